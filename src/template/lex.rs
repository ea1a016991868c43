//! Lexer for Go `text/template` syntax (the subset Prometheus alert templates use).
//!
//! Mirrors the token kinds of Go's `text/template/parse/lex.go`: text between
//! actions, `{{`/`}}` with the trim markers `{{- ` and ` -}}`, comments, and the
//! tokens inside an action. Spaces inside actions are tokens too, because the
//! parser needs them to tell `$x.y` (a field of `$x`) from `$x .y` (two operands).
//! Printable ASCII characters with no meaning of their own become [`Tok::Char`],
//! so that the parser reports them as `unexpected "}" in operand`, as Go does.

/// One lexed token; `pos` is the byte offset of its first byte in the source.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Item {
    pub kind: Tok,
    pub pos: usize,
    pub line: usize,
}

/// Token kinds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Text(String),
    LeftDelim,
    RightDelim,
    Space,
    Comment,
    Ident(String),
    Keyword(Kw),
    Field(String),
    Variable(String),
    Dot,
    Bool(bool),
    Nil,
    Number(String),
    CharConst(String),
    Str(String),
    RawStr(String),
    Pipe,
    LeftParen,
    RightParen,
    Assign,
    Declare,
    Char(char),
    Eof,
    Error(String),
}

/// Action keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kw {
    If,
    Else,
    End,
    Range,
    With,
    Break,
    Continue,
    Define,
    Template,
    Block,
}

impl Kw {
    fn from_ident(s: &str) -> Option<Kw> {
        Some(match s {
            "if" => Kw::If,
            "else" => Kw::Else,
            "end" => Kw::End,
            "range" => Kw::Range,
            "with" => Kw::With,
            "break" => Kw::Break,
            "continue" => Kw::Continue,
            "define" => Kw::Define,
            "template" => Kw::Template,
            "block" => Kw::Block,
            _ => return None,
        })
    }

    /// The keyword's source spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Kw::If => "if",
            Kw::Else => "else",
            Kw::End => "end",
            Kw::Range => "range",
            Kw::With => "with",
            Kw::Break => "break",
            Kw::Continue => "continue",
            Kw::Define => "define",
            Kw::Template => "template",
            Kw::Block => "block",
        }
    }
}

impl Tok {
    /// How Go's `item.String()` shows a token in "unexpected ..." errors.
    pub fn describe(&self) -> String {
        let quoted = |s: &str| {
            if s.chars().count() > 10 {
                let head: String = s.chars().take(10).collect();
                format!("{}...", go_quote(&head))
            } else {
                go_quote(s)
            }
        };
        match self {
            Tok::Eof => "EOF".to_string(),
            Tok::Error(e) => e.clone(),
            Tok::Keyword(k) => format!("<{}>", k.as_str()),
            Tok::Text(s) => quoted(s),
            Tok::LeftDelim => quoted("{{"),
            Tok::RightDelim => quoted("}}"),
            Tok::Space => quoted(" "),
            Tok::Comment => quoted("/**/"),
            Tok::Ident(s) | Tok::Field(s) | Tok::Variable(s) | Tok::Number(s) | Tok::CharConst(s) => quoted(s),
            Tok::Str(s) => quoted(&go_quote(s)),
            Tok::RawStr(s) => quoted(&format!("`{s}`")),
            Tok::Dot => quoted("."),
            Tok::Bool(b) => quoted(if *b { "true" } else { "false" }),
            Tok::Nil => quoted("nil"),
            Tok::Pipe => quoted("|"),
            Tok::LeftParen => quoted("("),
            Tok::RightParen => quoted(")"),
            Tok::Assign => quoted("="),
            Tok::Declare => quoted(":="),
            Tok::Char(c) => quoted(&c.to_string()),
        }
    }
}

/// Go's `strconv.Quote`: double-quoted with Go escapes for control characters.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const LEFT: &str = "{{";
const RIGHT: &str = "}}";

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Splits a whole template into tokens. Lexing stops at the first error, which
/// is returned as a final [`Tok::Error`] item.
pub(crate) fn lex(src: &str) -> Vec<Item> {
    let mut lx = Lexer { src, b: src.as_bytes(), pos: 0, line: 1, items: Vec::new(), paren_depth: 0 };
    lx.run();
    lx.items
}

struct Lexer<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    line: usize,
    items: Vec<Item>,
    paren_depth: usize,
}

impl<'a> Lexer<'a> {
    fn emit(&mut self, kind: Tok, pos: usize, line: usize) {
        self.items.push(Item { kind, pos, line });
    }

    fn count_lines(&mut self, from: usize, to: usize) {
        self.line += self.b[from..to].iter().filter(|&&c| c == b'\n').count();
    }

    fn error(&mut self, msg: String) {
        let (pos, line) = (self.pos, self.line);
        self.emit(Tok::Error(msg), pos, line);
    }

    fn run(&mut self) {
        let mut trim_next_text = false;
        loop {
            // Text up to the next left delimiter.
            let rest = &self.src[self.pos..];
            let next = rest.find(LEFT);
            let text_end = next.map_or(self.src.len(), |i| self.pos + i);
            let mut text = &self.src[self.pos..text_end];
            let text_start = self.pos;
            let text_line = self.line;
            let mut trim_left = false;
            if next.is_some() {
                let after = &self.b[text_end + LEFT.len()..];
                trim_left = after.len() >= 2 && after[0] == b'-' && is_space(after[1]);
            }
            if trim_next_text {
                text = text.trim_start_matches([' ', '\t', '\r', '\n']);
            }
            if trim_left {
                text = text.trim_end_matches([' ', '\t', '\r', '\n']);
            }
            if !text.is_empty() {
                self.emit(Tok::Text(text.to_string()), text_start, text_line);
            }
            self.count_lines(text_start, text_end);
            self.pos = text_end;
            if next.is_none() {
                let (p, l) = (self.pos, self.line);
                self.emit(Tok::Eof, p, l);
                return;
            }
            match self.lex_action(trim_left) {
                Some(trim) => trim_next_text = trim,
                None => return,
            }
        }
    }

    /// Lexes one action starting at a left delimiter; returns whether the
    /// action ended with a right trim marker, or `None` after an error.
    fn lex_action(&mut self, trim_left: bool) -> Option<bool> {
        let (p, l) = (self.pos, self.line);
        self.pos += LEFT.len();
        if trim_left {
            self.pos += 2;
        }
        // Comments: `{{/* ... */}}`, only directly after the delimiter (and trim marker).
        if self.src[self.pos..].starts_with("/*") {
            let Some(end) = self.src[self.pos..].find("*/") else {
                self.error("unclosed comment".to_string());
                return None;
            };
            let after = self.pos + end + 2;
            self.count_lines(self.pos, after);
            self.pos = after;
            let (closed, trim) = self.at_right_delim();
            if !closed {
                self.error("comment ends before closing delimiter".to_string());
                return None;
            }
            self.pos += if trim { 2 + RIGHT.len() } else { RIGHT.len() };
            self.emit(Tok::Comment, p, l);
            return Some(trim);
        }
        self.emit(Tok::LeftDelim, p, l);
        self.paren_depth = 0;
        loop {
            let (closed, trim) = self.at_right_delim();
            if closed {
                if self.paren_depth > 0 {
                    self.error("unclosed left paren".to_string());
                    return None;
                }
                if trim {
                    self.pos += 2;
                }
                let (p, l) = (self.pos, self.line);
                self.pos += RIGHT.len();
                self.emit(Tok::RightDelim, p, l);
                return Some(trim);
            }
            if !self.lex_inside_action() {
                return None;
            }
        }
    }

    /// Whether the input is at `}}` or ` -}}`; the second value says it was the trim form.
    fn at_right_delim(&self) -> (bool, bool) {
        let rest = &self.b[self.pos..];
        if rest.len() >= 2 && is_space(rest[0]) && rest[1] == b'-' && rest[2..].starts_with(RIGHT.as_bytes()) {
            return (true, true);
        }
        (rest.starts_with(RIGHT.as_bytes()), false)
    }

    fn peek_char(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    /// Lexes one token inside an action; false after an error.
    fn lex_inside_action(&mut self) -> bool {
        let start = self.pos;
        let line = self.line;
        let Some(c) = self.peek_char() else {
            self.error("unclosed action".to_string());
            return false;
        };
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                // A run of spaces; stop before a ` -}}` trim marker.
                while self.pos < self.b.len() && is_space(self.b[self.pos]) {
                    if self.at_right_delim().1 {
                        break;
                    }
                    self.pos += 1;
                }
                self.count_lines(start, self.pos);
                if self.pos > start {
                    self.emit(Tok::Space, start, line);
                } else {
                    // Sitting exactly on a trim marker: the caller closes the action.
                }
            }
            '=' => {
                self.pos += 1;
                self.emit(Tok::Assign, start, line);
            }
            ':' => {
                if self.b.get(self.pos + 1) != Some(&b'=') {
                    self.error("expected :=".to_string());
                    return false;
                }
                self.pos += 2;
                self.emit(Tok::Declare, start, line);
            }
            '|' => {
                self.pos += 1;
                self.emit(Tok::Pipe, start, line);
            }
            '"' => return self.lex_quote(start, line),
            '`' => {
                let Some(end) = self.src[self.pos + 1..].find('`') else {
                    self.error("unterminated raw quoted string".to_string());
                    return false;
                };
                let s = self.src[self.pos + 1..self.pos + 1 + end].to_string();
                self.pos += end + 2;
                self.count_lines(start, self.pos);
                self.emit(Tok::RawStr(s), start, line);
            }
            '$' => {
                self.pos += 1;
                self.take_while(is_alnum);
                let name = self.src[start..self.pos].to_string();
                if !self.at_terminator() {
                    return self.bad_char();
                }
                self.emit(Tok::Variable(name), start, line);
            }
            '\'' => return self.lex_char_const(start, line),
            '.' => {
                let next = self.src[self.pos + 1..].chars().next();
                if next.is_some_and(|n| n.is_ascii_digit()) {
                    return self.lex_number(start, line);
                }
                self.pos += 1;
                if next.is_some_and(is_alnum) {
                    self.take_while(is_alnum);
                    let name = self.src[start + 1..self.pos].to_string();
                    if !self.at_terminator() {
                        return self.bad_char();
                    }
                    self.emit(Tok::Field(name), start, line);
                } else {
                    self.emit(Tok::Dot, start, line);
                }
            }
            '+' | '-' | '0'..='9' => return self.lex_number(start, line),
            '(' => {
                self.pos += 1;
                self.paren_depth += 1;
                self.emit(Tok::LeftParen, start, line);
            }
            ')' => {
                self.pos += 1;
                if self.paren_depth == 0 {
                    self.error("unexpected right paren".to_string());
                    return false;
                }
                self.paren_depth -= 1;
                self.emit(Tok::RightParen, start, line);
            }
            c if is_alnum(c) => {
                self.take_while(is_alnum);
                let word = &self.src[start..self.pos];
                if !self.at_terminator() {
                    return self.bad_char();
                }
                let tok = if let Some(k) = Kw::from_ident(word) {
                    Tok::Keyword(k)
                } else {
                    match word {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        w => Tok::Ident(w.to_string()),
                    }
                };
                self.emit(tok, start, line);
            }
            c if c.is_ascii() && !c.is_ascii_control() => {
                self.pos += 1;
                self.emit(Tok::Char(c), start, line);
            }
            c => {
                self.error(format!("unrecognized character in action: {}", go_rune(c)));
                return false;
            }
        }
        true
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) {
        while let Some(c) = self.peek_char() {
            if !f(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
    }

    /// Go's `atTerminator`: what may follow an identifier, field or variable.
    fn at_terminator(&self) -> bool {
        match self.peek_char() {
            None => true,
            Some(' ' | '\t' | '\r' | '\n' | '.' | ',' | '|' | ':' | ')' | '(') => true,
            Some(_) => self.src[self.pos..].starts_with(RIGHT),
        }
    }

    fn bad_char(&mut self) -> bool {
        let c = self.peek_char().unwrap_or('\0');
        self.error(format!("bad character {}", go_rune(c)));
        false
    }

    fn lex_quote(&mut self, start: usize, line: usize) -> bool {
        let mut i = self.pos + 1;
        loop {
            match self.b.get(i) {
                None | Some(b'\n') => {
                    self.error("unterminated quoted string".to_string());
                    return false;
                }
                Some(b'\\') => i += 2,
                Some(b'"') => break,
                Some(_) => i += 1,
            }
        }
        let raw = &self.src[self.pos..=i];
        match unquote(raw) {
            Ok(s) => {
                self.pos = i + 1;
                self.emit(Tok::Str(s), start, line);
                true
            }
            Err(()) => {
                self.error(format!("invalid syntax: {raw}"));
                false
            }
        }
    }

    fn lex_char_const(&mut self, start: usize, line: usize) -> bool {
        let mut i = self.pos + 1;
        loop {
            match self.b.get(i) {
                None | Some(b'\n') => {
                    self.error("unterminated character constant".to_string());
                    return false;
                }
                Some(b'\\') => i += 2,
                Some(b'\'') => break,
                Some(_) => i += 1,
            }
        }
        let raw = self.src[self.pos..=i].to_string();
        self.pos = i + 1;
        self.emit(Tok::CharConst(raw), start, line);
        true
    }

    fn lex_number(&mut self, start: usize, line: usize) -> bool {
        // Go's scanNumber: optional sign, base prefix, digits with '_', fraction, exponent.
        let b = self.b;
        let mut i = self.pos;
        if matches!(b.get(i), Some(b'+') | Some(b'-')) {
            i += 1;
        }
        let mut digits: &[u8] = b"0123456789_";
        let mut exp: &[u8] = b"eE";
        if b.get(i) == Some(&b'0') && matches!(b.get(i + 1), Some(b'x' | b'X' | b'o' | b'O' | b'b' | b'B')) {
            match b[i + 1] {
                b'x' | b'X' => {
                    digits = b"0123456789abcdefABCDEF_";
                    exp = b"pP";
                }
                b'o' | b'O' => {
                    digits = b"01234567_";
                    exp = b"";
                }
                _ => {
                    digits = b"01_";
                    exp = b"";
                }
            }
            i += 2;
        }
        while b.get(i).is_some_and(|c| digits.contains(c)) {
            i += 1;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            while b.get(i).is_some_and(|c| digits.contains(c)) {
                i += 1;
            }
        }
        if !exp.is_empty() && b.get(i).is_some_and(|c| exp.contains(c)) {
            i += 1;
            if matches!(b.get(i), Some(b'+') | Some(b'-')) {
                i += 1;
            }
            while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
                i += 1;
            }
        }
        self.pos = i;
        if self.peek_char().is_some_and(is_alnum) {
            self.pos += self.peek_char().map_or(1, char::len_utf8);
            let text = self.src[start..self.pos].to_string();
            self.error(format!("bad number syntax: {}", go_quote(&text)));
            return false;
        }
        let text = self.src[start..self.pos].to_string();
        self.emit(Tok::Number(text), start, line);
        true
    }
}

/// Go's `%#U` for a rune: `U+007D '}'`.
fn go_rune(c: char) -> String {
    format!("U+{:04X} '{}'", c as u32, c)
}

/// Go's `strconv.Unquote` for a double-quoted literal (quotes included).
pub(crate) fn unquote(raw: &str) -> Result<String, ()> {
    let inner = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')).ok_or(())?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    let mut bytes: Vec<u8> = Vec::new();
    while let Some(c) = chars.next() {
        if c != '\\' {
            flush_bytes(&mut bytes, &mut out)?;
            out.push(c);
            continue;
        }
        let e = chars.next().ok_or(())?;
        let simple = match e {
            'n' => Some('\n'),
            't' => Some('\t'),
            'r' => Some('\r'),
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'v' => Some('\u{b}'),
            '\\' => Some('\\'),
            '"' => Some('"'),
            _ => None,
        };
        if let Some(s) = simple {
            flush_bytes(&mut bytes, &mut out)?;
            out.push(s);
            continue;
        }
        let hex = |chars: &mut std::str::Chars<'_>, n: usize| -> Result<u32, ()> {
            let s: String = chars.take(n).collect();
            if s.len() != n {
                return Err(());
            }
            u32::from_str_radix(&s, 16).map_err(|_| ())
        };
        match e {
            'x' => bytes.push(hex(&mut chars, 2)? as u8),
            '0'..='7' => {
                let rest: String = chars.by_ref().take(2).collect();
                let v = u32::from_str_radix(&format!("{e}{rest}"), 8).map_err(|_| ())?;
                bytes.push(u8::try_from(v).map_err(|_| ())?);
            }
            'u' | 'U' => {
                flush_bytes(&mut bytes, &mut out)?;
                let v = hex(&mut chars, if e == 'u' { 4 } else { 8 })?;
                out.push(char::from_u32(v).ok_or(())?);
            }
            _ => return Err(()),
        }
    }
    flush_bytes(&mut bytes, &mut out)?;
    Ok(out)
}

fn flush_bytes(bytes: &mut Vec<u8>, out: &mut String) -> Result<(), ()> {
    if !bytes.is_empty() {
        // Byte escapes must form valid UTF-8 here, because our strings are `str`.
        out.push_str(std::str::from_utf8(bytes).map_err(|_| ())?);
        bytes.clear();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok> {
        lex(src).into_iter().map(|i| i.kind).collect()
    }

    #[test]
    fn text_and_action() {
        assert_eq!(
            kinds("a {{ $labels.x }} b"),
            vec![
                Tok::Text("a ".into()),
                Tok::LeftDelim,
                Tok::Space,
                Tok::Variable("$labels".into()),
                Tok::Field("x".into()),
                Tok::Space,
                Tok::RightDelim,
                Tok::Text(" b".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn trim_markers_and_comments() {
        assert_eq!(
            kinds("a  {{- 1 -}}  b{{/* c */}}"),
            vec![
                Tok::Text("a".into()),
                Tok::LeftDelim,
                Tok::Number("1".into()),
                Tok::RightDelim,
                Tok::Text("b".into()),
                Tok::Comment,
                Tok::Eof
            ]
        );
        // `{{-3}}` is the number -3, not a trim marker.
        assert_eq!(kinds("{{-3}}")[1], Tok::Number("-3".into()));
    }

    #[test]
    fn errors() {
        assert_eq!(kinds("{{ 1").last(), Some(&Tok::Error("unclosed action".into())));
        assert_eq!(kinds("{{/* x").last(), Some(&Tok::Error("unclosed comment".into())));
        assert_eq!(kinds("{{ 3x }}").last(), Some(&Tok::Error("bad number syntax: \"3x\"".into())));
        assert!(matches!(kinds("{{ } }}")[2], Tok::Char('}')));
    }

    #[test]
    fn unquote_escapes() {
        assert_eq!(unquote(r#""a\n\"b\x41\u00e9""#), Ok("a\n\"bAé".to_string()));
        assert!(unquote(r#""\q""#).is_err());
    }
}
