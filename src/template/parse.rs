//! Parser for Go `text/template` syntax into a small tree.
//!
//! Follows the structure and the error texts of Go's `text/template/parse/parse.go`
//! (`itemList`, `action`, `pipeline`, `command`, `operand`, `term`, `parseControl`),
//! including its parse-time checks: undefined variables, undefined functions,
//! `{{break}}` outside `{{range}}`, and non-executable pipeline stages.

use std::fmt;

use super::funcs::Func;
use super::lex::{go_quote, lex, Item, Kw, Tok};

/// A parse failure: Go reports only the line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParseError {
    pub line: usize,
    pub msg: String,
}

/// A node of the template body.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Box<Branch>),
    Range(Box<Branch>),
    With(Box<Branch>),
    Break,
    Continue,
}

/// The shared shape of `if`, `range` and `with`.
#[derive(Debug, Clone)]
pub(crate) struct Branch {
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

/// A pipeline, with optional variable declarations (`$x :=`) or assignment (`$x =`).
#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub pos: usize,
    pub decl: Vec<String>,
    pub is_assign: bool,
    pub cmds: Vec<Cmd>,
}

/// One stage of a pipeline: a function or value followed by arguments.
#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    pub pos: usize,
    pub args: Vec<Arg>,
}

/// An operand, with the byte offset where it starts.
#[derive(Debug, Clone)]
pub(crate) struct Arg {
    pub pos: usize,
    pub kind: ArgKind,
}

/// Operand kinds.
#[derive(Debug, Clone)]
pub(crate) enum ArgKind {
    /// `.A.B` (empty path never happens; a lone `.` is `Dot`).
    Field(Vec<String>),
    /// `$x.A.B`.
    Variable(String, Vec<String>),
    Dot,
    Nil,
    Bool(bool),
    Number(Number),
    /// A string literal: its value and its source spelling.
    Str(String, String),
    Func(Func),
    /// `(pipeline).A.B` or `func.A`.
    Chain(Box<Arg>, Vec<String>),
    Pipe(Box<Pipe>),
}

/// A numeric literal: Go keeps every interpretation that parses.
#[derive(Debug, Clone)]
pub(crate) struct Number {
    pub text: String,
    pub int: Option<i64>,
    pub float: Option<f64>,
}

impl Number {
    /// Go's `idealConstant`: a float if the text has a fraction or exponent, else an int.
    pub fn is_float_literal(&self) -> bool {
        let t = self.text.trim_start_matches(['+', '-']);
        let hex = t.starts_with("0x") || t.starts_with("0X");
        !self.text.starts_with('\'') && ((hex && t.contains(['p', 'P'])) || (!hex && t.contains(['.', 'e', 'E'])))
    }
}

fn parse_number(text: &str) -> Option<Number> {
    if let Some(rest) = text.strip_prefix('\'') {
        let inner = rest.strip_suffix('\'')?;
        let c = if inner.starts_with('\\') {
            let s = super::lex::unquote(&format!("\"{inner}\"")).ok()?;
            let mut it = s.chars();
            let c = it.next()?;
            if it.next().is_some() {
                return None;
            }
            c
        } else {
            let mut it = inner.chars();
            let c = it.next()?;
            if it.next().is_some() {
                return None;
            }
            c
        };
        let v = c as i64;
        return Some(Number { text: text.to_string(), int: Some(v), float: Some(v as f64) });
    }
    let clean: String = text.chars().filter(|&c| c != '_').collect();
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    let (radix, digits) = if let Some(d) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        (16, d.to_string())
    } else if let Some(d) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
        (8, d.to_string())
    } else if let Some(d) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        (2, d.to_string())
    } else if body.len() > 1 && body.starts_with('0') && body.bytes().all(|c| c.is_ascii_digit()) {
        (8, body[1..].to_string())
    } else {
        (10, body.clone())
    };
    let int = i64::from_str_radix(&digits, radix).ok().map(|v| if neg { -v } else { v });
    let float = if let Some(i) = int {
        Some(i as f64)
    } else if radix == 10 {
        clean.parse::<f64>().ok()
    } else {
        None
    };
    if int.is_none() && float.is_none() {
        return None;
    }
    Some(Number { text: text.to_string(), int, float })
}

/// Variables every Prometheus alert template can use: `$` plus the ones the
/// rule manager declares in its template header (see `rules/alerting.go`).
pub(crate) const PREDEFINED_VARS: [&str; 5] = ["$", "$labels", "$externalLabels", "$externalURL", "$value"];

/// Parses a template body.
pub(crate) fn parse(src: &str) -> Result<Vec<Node>, ParseError> {
    let items = lex(src);
    let mut p =
        Parser { items, i: 0, vars: PREDEFINED_VARS.iter().map(|s| s.to_string()).collect(), range_depth: 0, depth: 0 };
    let (list, end) = p.item_list()?;
    match end {
        ListEnd::Eof => Ok(list),
        ListEnd::End(line) => Err(ParseError { line, msg: "unexpected {{end}}".to_string() }),
        ListEnd::Else(line, _) => Err(ParseError { line, msg: "unexpected {{else}}".to_string() }),
    }
}

enum ListEnd {
    Eof,
    End(usize),
    /// `{{else}}`; the flag says an `if`/`with` keyword follows (`else if`).
    Else(usize, Option<Kw>),
}

struct Parser {
    items: Vec<Item>,
    i: usize,
    vars: Vec<String>,
    range_depth: usize,
    /// Current nesting of blocks and parenthesized pipelines.
    depth: usize,
}

/// Deepest nesting of blocks and parentheses accepted; the parser and the
/// executor recurse, so this bounds their stack use.
const MAX_DEPTH: usize = 100;

impl Parser {
    fn next(&mut self) -> Item {
        let it = self.items.get(self.i).cloned().unwrap_or(Item { kind: Tok::Eof, pos: 0, line: 0 });
        if self.i < self.items.len() {
            self.i += 1;
        }
        it
    }

    fn peek(&self) -> &Tok {
        self.items.get(self.i).map_or(&Tok::Eof, |it| &it.kind)
    }

    fn backup(&mut self) {
        self.i = self.i.saturating_sub(1);
    }

    fn next_non_space(&mut self) -> Item {
        loop {
            let it = self.next();
            if it.kind != Tok::Space {
                return it;
            }
        }
    }

    fn peek_non_space(&mut self) -> Tok {
        let it = self.next_non_space();
        self.backup();
        it.kind
    }

    fn line(&self) -> usize {
        self.items.get(self.i.saturating_sub(1)).map_or(1, |it| it.line)
    }

    fn err<T>(&self, msg: String) -> Result<T, ParseError> {
        Err(ParseError { line: self.line(), msg })
    }

    /// An error token from the lexer is reported as it is.
    fn unexpected<T>(&self, item: &Item, context: &str) -> Result<T, ParseError> {
        if let Tok::Error(e) = &item.kind {
            return Err(ParseError { line: item.line, msg: e.clone() });
        }
        Err(ParseError { line: item.line, msg: format!("unexpected {} in {}", item.kind.describe(), context) })
    }

    fn item_list(&mut self) -> Result<(Vec<Node>, ListEnd), ParseError> {
        let mut list = Vec::new();
        loop {
            let it = self.next();
            match it.kind {
                Tok::Eof => return Ok((list, ListEnd::Eof)),
                Tok::Text(s) => list.push(Node::Text(s)),
                Tok::Comment => {}
                Tok::LeftDelim => {
                    let t = self.next_non_space();
                    match t.kind {
                        Tok::Keyword(Kw::End) => {
                            self.expect_right_delim("end")?;
                            return Ok((list, ListEnd::End(t.line)));
                        }
                        Tok::Keyword(Kw::Else) => {
                            let after = self.peek_non_space();
                            if let Tok::Keyword(k @ (Kw::If | Kw::With)) = after {
                                return Ok((list, ListEnd::Else(t.line, Some(k))));
                            }
                            self.expect_right_delim("else")?;
                            return Ok((list, ListEnd::Else(t.line, None)));
                        }
                        Tok::Keyword(Kw::If) => list.push(Node::If(Box::new(self.control("if")?))),
                        Tok::Keyword(Kw::Range) => list.push(Node::Range(Box::new(self.control("range")?))),
                        Tok::Keyword(Kw::With) => list.push(Node::With(Box::new(self.control("with")?))),
                        Tok::Keyword(k @ (Kw::Break | Kw::Continue)) => {
                            if self.range_depth == 0 {
                                return self.err(format!("{{{{{}}}}} outside {{{{range}}}}", k.as_str()));
                            }
                            self.expect_right_delim(k.as_str())?;
                            list.push(if k == Kw::Break { Node::Break } else { Node::Continue });
                        }
                        Tok::Keyword(k @ (Kw::Define | Kw::Template | Kw::Block)) => {
                            return self.err(format!("{{{{{}}}}} is not supported in alert templates", k.as_str()));
                        }
                        _ => {
                            self.backup();
                            let pipe = self.pipeline("command", false)?;
                            list.push(Node::Action(pipe));
                        }
                    }
                }
                _ => return self.unexpected(&it, "input"),
            }
        }
    }

    fn expect_right_delim(&mut self, context: &str) -> Result<(), ParseError> {
        let t = self.next_non_space();
        if t.kind != Tok::RightDelim {
            return self.unexpected(&t, context);
        }
        Ok(())
    }

    /// `if`/`range`/`with`: pipeline, list, optional else list, end.
    fn control(&mut self, context: &str) -> Result<Branch, ParseError> {
        self.enter()?;
        let r = self.control_inner(context);
        self.depth -= 1;
        r
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.depth -= 1;
            return self.err(format!("template nests deeper than {MAX_DEPTH} levels"));
        }
        Ok(())
    }

    fn control_inner(&mut self, context: &str) -> Result<Branch, ParseError> {
        let mark = self.vars.len();
        let pipe = self.pipeline(context, false)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let (list, end) = self.item_list()?;
        if context == "range" {
            self.range_depth -= 1;
        }
        let else_list = match end {
            ListEnd::End(_) => None,
            ListEnd::Eof => return self.err("unexpected EOF".to_string()),
            ListEnd::Else(_, Some(k)) if (context == "if" && k == Kw::If) || (context == "with" && k == Kw::With) => {
                // `{{else if ...}}`: a nested control that consumes the single `{{end}}`.
                self.next_non_space();
                let inner = self.control(context)?;
                Some(vec![if k == Kw::If { Node::If(Box::new(inner)) } else { Node::With(Box::new(inner)) }])
            }
            ListEnd::Else(line, Some(_)) => {
                return Err(ParseError { line, msg: "unexpected <else> in {{else}}".to_string() });
            }
            ListEnd::Else(_, None) => {
                let (el, end) = self.item_list()?;
                match end {
                    ListEnd::End(_) => Some(el),
                    ListEnd::Eof => return self.err("unexpected EOF".to_string()),
                    ListEnd::Else(line, _) => {
                        return Err(ParseError { line, msg: "expected end; found {{else}}".to_string() })
                    }
                }
            }
        };
        self.vars.truncate(mark);
        Ok(Branch { pipe, list, else_list })
    }

    /// A pipeline up to `}}` (or `)` when `in_paren`).
    fn pipeline(&mut self, context: &str, in_paren: bool) -> Result<Pipe, ParseError> {
        let start = self.peek_non_space();
        let pos = self.items.get(self.i).map_or(0, |it| it.pos);
        let mut pipe = Pipe { pos, decl: Vec::new(), is_assign: false, cmds: Vec::new() };
        if let Tok::Variable(_) = start {
            self.decls(&mut pipe, context)?;
        }
        loop {
            let t = self.next_non_space();
            let ended = if in_paren { t.kind == Tok::RightParen } else { t.kind == Tok::RightDelim };
            if ended {
                if in_paren {
                    // Leave nothing: the caller does not expect the paren again.
                }
                self.check_pipeline(&pipe, context)?;
                return Ok(pipe);
            }
            match t.kind {
                Tok::Bool(_)
                | Tok::CharConst(_)
                | Tok::Dot
                | Tok::Field(_)
                | Tok::Ident(_)
                | Tok::Number(_)
                | Tok::Nil
                | Tok::RawStr(_)
                | Tok::Str(_)
                | Tok::Variable(_)
                | Tok::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return self.unexpected(&t, context),
            }
        }
    }

    fn decls(&mut self, pipe: &mut Pipe, context: &str) -> Result<(), ParseError> {
        let save = self.i;
        let v = self.next_non_space();
        let Tok::Variable(name) = v.kind else {
            self.i = save;
            return Ok(());
        };
        let next = self.peek_non_space();
        match next {
            Tok::Assign | Tok::Declare => {
                pipe.is_assign = next == Tok::Assign;
                self.next_non_space();
                if pipe.is_assign && !self.vars.contains(&name) {
                    return self.err(format!("undefined variable \"{name}\""));
                }
                pipe.decl.push(name.clone());
                self.vars.push(name);
            }
            Tok::Char(',') => {
                self.next_non_space();
                pipe.decl.push(name.clone());
                self.vars.push(name);
                if context != "range" {
                    return self.err(format!("too many declarations in {context}"));
                }
                let v2 = self.next_non_space();
                let Tok::Variable(name2) = v2.kind else {
                    return self.err("range can only initialize variables".to_string());
                };
                let t = self.next_non_space();
                if t.kind != Tok::Declare && t.kind != Tok::Assign {
                    return self.unexpected(&t, context);
                }
                pipe.is_assign = t.kind == Tok::Assign;
                pipe.decl.push(name2.clone());
                self.vars.push(name2);
            }
            _ => self.i = save,
        }
        Ok(())
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str) -> Result<(), ParseError> {
        if pipe.cmds.is_empty() {
            return self.err(format!("missing value for {context}"));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if let Some(first) = c.args.first() {
                if matches!(
                    first.kind,
                    ArgKind::Bool(_) | ArgKind::Dot | ArgKind::Nil | ArgKind::Number(_) | ArgKind::Str(..)
                ) {
                    return self.err(format!("non executable command in pipeline stage {}", i + 1));
                }
            }
        }
        Ok(())
    }

    fn command(&mut self) -> Result<Cmd, ParseError> {
        self.peek_non_space();
        let pos = self.items.get(self.i).map_or(0, |it| it.pos);
        let mut cmd = Cmd { pos, args: Vec::new() };
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                cmd.args.push(op);
            }
            let t = self.next();
            match t.kind {
                Tok::Space => continue,
                Tok::RightDelim | Tok::RightParen => self.backup(),
                Tok::Pipe => {}
                _ => return self.unexpected(&t, "operand"),
            }
            break;
        }
        if cmd.args.is_empty() {
            return self.err("empty command".to_string());
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> Result<Option<Arg>, ParseError> {
        let Some(term) = self.term()? else { return Ok(None) };
        if let Tok::Field(_) = self.peek() {
            let mut fields = Vec::new();
            while let Tok::Field(f) = self.peek().clone() {
                self.next();
                fields.push(f);
            }
            let pos = term.pos;
            let kind = match term.kind {
                ArgKind::Field(mut base) => {
                    base.extend(fields);
                    ArgKind::Field(base)
                }
                ArgKind::Variable(name, mut base) => {
                    base.extend(fields);
                    ArgKind::Variable(name, base)
                }
                ArgKind::Bool(_) | ArgKind::Str(..) | ArgKind::Number(_) | ArgKind::Nil | ArgKind::Dot => {
                    return self.err(format!("unexpected . after term {}", go_quote(&term.to_string())));
                }
                other => ArgKind::Chain(Box::new(Arg { pos, kind: other }), fields),
            };
            return Ok(Some(Arg { pos, kind }));
        }
        Ok(Some(term))
    }

    fn term(&mut self) -> Result<Option<Arg>, ParseError> {
        let t = self.next_non_space();
        let pos = t.pos;
        let kind = match t.kind {
            Tok::Ident(name) => match Func::lookup(&name) {
                Some(f) => ArgKind::Func(f),
                None => return self.err(format!("function {} not defined", go_quote(&name))),
            },
            Tok::Dot => ArgKind::Dot,
            Tok::Nil => ArgKind::Nil,
            Tok::Variable(name) => {
                if !self.vars.contains(&name) {
                    return self.err(format!("undefined variable {}", go_quote(&name)));
                }
                ArgKind::Variable(name, Vec::new())
            }
            Tok::Field(f) => ArgKind::Field(vec![f]),
            Tok::Bool(b) => ArgKind::Bool(b),
            Tok::Number(text) | Tok::CharConst(text) => match parse_number(&text) {
                Some(n) => ArgKind::Number(n),
                None => return self.err(format!("illegal number syntax: {}", go_quote(&text))),
            },
            Tok::LeftParen => {
                self.enter()?;
                let pipe = self.pipeline("parenthesized pipeline", true);
                self.depth -= 1;
                ArgKind::Pipe(Box::new(pipe?))
            }
            Tok::Str(s) => ArgKind::Str(s.clone(), go_quote(&s)),
            Tok::RawStr(s) => ArgKind::Str(s.clone(), format!("`{s}`")),
            _ => {
                self.backup();
                return Ok(None);
            }
        };
        Ok(Some(Arg { pos, kind }))
    }
}

fn write_fields(f: &mut fmt::Formatter<'_>, fields: &[String]) -> fmt::Result {
    for x in fields {
        write!(f, ".{x}")?;
    }
    Ok(())
}

/// Go's `Node.String()` forms, used in "executing ... at <...>" error contexts.
impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ArgKind::Field(p) => write_fields(f, p),
            ArgKind::Variable(n, p) => {
                f.write_str(n)?;
                write_fields(f, p)
            }
            ArgKind::Dot => f.write_str("."),
            ArgKind::Nil => f.write_str("nil"),
            ArgKind::Bool(b) => write!(f, "{b}"),
            ArgKind::Number(n) => f.write_str(&n.text),
            ArgKind::Str(_, src) => f.write_str(src),
            ArgKind::Func(func) => f.write_str(func.name()),
            ArgKind::Chain(base, p) => {
                if let ArgKind::Pipe(_) = base.kind {
                    write!(f, "{base}")?;
                } else {
                    write!(f, "{base}")?;
                }
                write_fields(f, p)
            }
            ArgKind::Pipe(p) => write!(f, "({p})"),
        }
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            f.write_str(&self.decl.join(", "))?;
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> String {
        match parse(src) {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("{}: {}", e.line, e.msg),
        }
    }

    #[test]
    fn parse_errors_match_go_texts() {
        assert_eq!(err("{{ 1} }}"), "1: unexpected \"}\" in operand");
        assert_eq!(err("{{ .x} }}"), "1: bad character U+007D '}'");
        assert_eq!(err("{{ if true }}x"), "1: unexpected EOF");
        assert_eq!(err("a\n{{ end }}"), "2: unexpected {{end}}");
        assert_eq!(err("{{ nope 1 }}"), "1: function \"nope\" not defined");
        assert_eq!(err("{{ $undefined }}"), "1: undefined variable \"$undefined\"");
        assert_eq!(err("{{ break }}"), "1: {{break}} outside {{range}}");
        assert_eq!(err("{{ }}"), "1: missing value for command");
        assert_eq!(err("{{ 1 | 2 }}"), "1: non executable command in pipeline stage 2");
        assert_eq!(err("{{ \"a\".b }}"), "1: unexpected . after term \"\\\"a\\\"\"");
        assert_eq!(err("{{ 1"), "1: unclosed action");
    }

    #[test]
    fn accepts_prometheus_shapes() {
        for src in [
            "{{ $labels.instance }} is {{ $value | humanizePercentage }}",
            "{{ if gt $value 0.5 }}high{{ else if gt $value 0.1 }}mid{{ else }}low{{ end }}",
            "{{ range $k, $v := $labels }}{{ $k }}={{ $v }} {{ end }}",
            "{{ with query \"up\" }}{{ . | first | value | humanize }}{{ end }}",
            "{{ (query \"up\" | first).Labels.job }}",
            "{{ $x := 1 }}{{ $x = 2 }}{{ $x }}",
            "{{- /* c */ -}} {{ printf \"%.2f\" .Value }}",
            "{{ range $i, $s := query \"up\" }}{{ if eq $i 1 }}{{ break }}{{ end }}{{ end }}",
        ] {
            assert_eq!(err(src), "ok", "{src}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{{{{ {}1{} }}}}", "(".repeat(5000), ")".repeat(5000));
        assert_eq!(err(&deep), "1: template nests deeper than 100 levels");
        let blocks = "{{ if true }}".repeat(5000);
        assert_eq!(err(&blocks), "1: template nests deeper than 100 levels");
        let ok = format!("{{{{ {}1{} }}}}", "(".repeat(50), ")".repeat(50));
        assert_eq!(err(&ok), "ok");
    }

    #[test]
    fn variables_scoped_to_blocks() {
        assert_eq!(err("{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}"), "1: undefined variable \"$y\"");
    }

    #[test]
    fn numbers() {
        let n = parse_number("1e3").unwrap();
        assert!(n.is_float_literal());
        assert_eq!(n.float, Some(1000.0));
        let n = parse_number("0x1F").unwrap();
        assert_eq!(n.int, Some(31));
        assert!(!n.is_float_literal());
        assert_eq!(parse_number("'a'").unwrap().int, Some(97));
        assert_eq!(parse_number("-1_000").unwrap().int, Some(-1000));
    }
}
