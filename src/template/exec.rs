//! Executes a parsed template, following Go's `text/template/exec.go`
//! (`walk`, `evalPipeline`, `evalCommand`, `evalField`, `walkRange`) with the
//! `missingkey=zero` option Prometheus sets.
//!
//! Execution is bounded: the output size and the number of steps (nodes and
//! loop iterations) are capped, so a template like `{{range 1000000000}}`
//! fails instead of stalling a rule group.

use std::borrow::Cow;
use std::rc::Rc;

use super::funcs::{call, Env, Func, FuncError};
use super::gotime;
use super::parse::{Arg, ArgKind, Branch, Cmd, Node, Pipe};
use super::value::Value;

/// Largest output one execution may produce.
pub(crate) const MAX_OUTPUT: usize = 1 << 20;
/// Most nodes, commands and loop iterations one execution may run.
pub(crate) const MAX_STEPS: u64 = 1_000_000;

/// An execution failure at a byte offset of the template source.
#[derive(Debug)]
pub(crate) struct ExecError {
    pub pos: usize,
    pub context: String,
    pub msg: String,
}

enum Flow {
    Normal,
    Break,
    Continue,
}

type R<T> = Result<T, ExecError>;

pub(crate) struct Exec<'a> {
    pub env: Env<'a>,
    vars: Vec<(Cow<'static, str>, Value)>,
    out: String,
    steps: u64,
}

fn err<T>(at: &impl ToString, pos: usize, msg: String) -> R<T> {
    Err(ExecError { pos, context: at.to_string(), msg })
}

impl<'a> Exec<'a> {
    pub fn new(env: Env<'a>, vars: Vec<(Cow<'static, str>, Value)>) -> Self {
        Exec { env, vars, out: String::new(), steps: 0 }
    }

    /// Runs the template body with `dot` as `.`, returning the output.
    pub fn run(mut self, nodes: &[Node], dot: &Value) -> R<String> {
        self.walk(nodes, dot)?;
        Ok(self.out)
    }

    fn step(&mut self, pos: usize, at: &impl ToString) -> R<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return err(at, pos, format!("template exceeded {MAX_STEPS} execution steps"));
        }
        Ok(())
    }

    fn emit(&mut self, s: &str, pos: usize, at: &impl ToString) -> R<()> {
        if self.out.len() + s.len() > MAX_OUTPUT {
            return err(at, pos, format!("template output exceeds {MAX_OUTPUT} bytes"));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn walk(&mut self, nodes: &[Node], dot: &Value) -> R<Flow> {
        for n in nodes {
            let flow = match n {
                Node::Text(t) => {
                    self.emit(t, 0, &"text")?;
                    Flow::Normal
                }
                Node::Action(pipe) => {
                    self.step(pipe.pos, pipe)?;
                    let v = self.eval_pipeline(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        let s = v.display();
                        self.emit(&s, pipe.pos, pipe)?;
                    }
                    Flow::Normal
                }
                Node::If(b) => self.if_or_with(b, dot, false)?,
                Node::With(b) => self.if_or_with(b, dot, true)?,
                Node::Range(b) => {
                    self.range(b, dot)?;
                    Flow::Normal
                }
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if !matches!(flow, Flow::Normal) {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn if_or_with(&mut self, b: &Branch, dot: &Value, is_with: bool) -> R<Flow> {
        let mark = self.vars.len();
        self.step(b.pipe.pos, &b.pipe)?;
        let v = self.eval_pipeline(dot, &b.pipe)?;
        let flow = if v.truth() {
            let inner_dot = if is_with { v } else { dot.clone() };
            self.walk(&b.list, &inner_dot)?
        } else if let Some(el) = &b.else_list {
            self.walk(el, dot)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn range(&mut self, b: &Branch, dot: &Value) -> R<()> {
        let mark = self.vars.len();
        // The ranged value, without binding the declared variables to it.
        let mut val = None;
        for c in &b.pipe.cmds {
            val = Some(self.eval_command(dot, c, val)?);
        }
        let val = val.unwrap_or(Value::Nil);
        let pipe = &b.pipe;
        let items: Vec<(Value, Value)> = match &val {
            Value::Samples(s) => {
                s.iter().enumerate().map(|(i, x)| (Value::Int(i as i64), Value::Sample(x.clone()))).collect()
            }
            Value::StrMap(m) => m.iter().map(|l| (Value::str(l.name), Value::str(l.value))).collect(),
            Value::AnyMap(m) => m.iter().map(|(k, v)| (Value::str(k), v.clone())).collect(),
            Value::Int(n) => {
                if pipe.decl.len() > 1 {
                    return err(pipe, pipe.pos, format!("can't use {n} to iterate over more than one variable"));
                }
                if *n > MAX_STEPS as i64 {
                    return err(pipe, pipe.pos, format!("template exceeded {MAX_STEPS} execution steps"));
                }
                (0..(*n).max(0)).map(|i| (Value::Int(i), Value::Int(i))).collect()
            }
            Value::Nil => Vec::new(),
            other => return err(pipe, pipe.pos, format!("range can't iterate over {}", other.display())),
        };
        if items.is_empty() {
            if let Some(el) = &b.else_list {
                self.walk(el, dot)?;
            }
            self.vars.truncate(mark);
            return Ok(());
        }
        for (key, elem) in items {
            self.step(pipe.pos, pipe)?;
            let iter_mark = self.vars.len();
            match pipe.decl.as_slice() {
                [] => {}
                [v] => self.bind(v, elem.clone(), pipe.is_assign, pipe)?,
                [k, v, ..] => {
                    self.bind(k, key, pipe.is_assign, pipe)?;
                    self.bind(v, elem.clone(), pipe.is_assign, pipe)?;
                }
            }
            let flow = self.walk(&b.list, &elem)?;
            self.vars.truncate(iter_mark);
            if let Flow::Break = flow {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(())
    }

    fn bind(&mut self, name: &str, v: Value, assign: bool, at: &Pipe) -> R<()> {
        if assign {
            match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = v,
                None => return err(at, at.pos, format!("undefined variable: {name}")),
            }
        } else {
            self.vars.push((Cow::Owned(name.to_string()), v));
        }
        Ok(())
    }

    fn var(&self, name: &str, at: &Arg) -> R<Value> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => err(at, at.pos, format!("undefined variable: {name}")),
        }
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipe) -> R<Value> {
        let mut val = None;
        for c in &pipe.cmds {
            val = Some(self.eval_command(dot, c, val)?);
        }
        let val = val.unwrap_or(Value::Nil);
        for d in &pipe.decl {
            self.bind(d, val.clone(), pipe.is_assign, pipe)?;
        }
        Ok(val)
    }

    fn not_a_function(&self, cmd: &Cmd, final_: &Option<Value>) -> R<()> {
        if cmd.args.len() > 1 || final_.is_some() {
            return err(cmd, cmd.pos, format!("can't give argument to non-function {}", cmd.args[0]));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &Cmd, final_: Option<Value>) -> R<Value> {
        let Some(first) = cmd.args.first() else {
            return err(cmd, cmd.pos, "empty command".to_string());
        };
        let rest = &cmd.args[1..];
        match &first.kind {
            ArgKind::Field(path) => self.eval_fields(dot, dot.clone(), path, rest, final_, first),
            ArgKind::Chain(base, path) => {
                let recv = self.eval_arg(dot, base)?;
                self.eval_fields(dot, recv, path, rest, final_, first)
            }
            ArgKind::Variable(name, path) => {
                let v = self.var(name, first)?;
                if path.is_empty() {
                    self.not_a_function(cmd, &final_)?;
                    return Ok(v);
                }
                self.eval_fields(dot, v, path, rest, final_, first)
            }
            ArgKind::Func(f) => self.call_func(dot, *f, rest, final_, first),
            ArgKind::Pipe(p) => {
                self.not_a_function(cmd, &final_)?;
                self.eval_pipeline(dot, p)
            }
            ArgKind::Nil => err(first, first.pos, "nil is not a command".to_string()),
            _ => {
                self.not_a_function(cmd, &final_)?;
                self.eval_arg(dot, first)
            }
        }
    }

    /// An operand used as an argument: evaluated with no arguments of its own.
    fn eval_arg(&mut self, dot: &Value, a: &Arg) -> R<Value> {
        match &a.kind {
            ArgKind::Dot => Ok(dot.clone()),
            ArgKind::Nil => Ok(Value::Nil),
            ArgKind::Bool(b) => Ok(Value::Bool(*b)),
            ArgKind::Str(s, _) => Ok(Value::str(s)),
            ArgKind::Number(n) => {
                if n.is_float_literal() {
                    Ok(Value::Float(n.float.unwrap_or(0.0)))
                } else if let Some(i) = n.int {
                    Ok(Value::Int(i))
                } else {
                    err(a, a.pos, format!("{} overflows int", n.text))
                }
            }
            ArgKind::Field(path) => self.eval_fields(dot, dot.clone(), path, &[], None, a),
            ArgKind::Variable(name, path) => {
                let v = self.var(name, a)?;
                if path.is_empty() {
                    return Ok(v);
                }
                self.eval_fields(dot, v, path, &[], None, a)
            }
            ArgKind::Chain(base, path) => {
                if let ArgKind::Nil = base.kind {
                    return err(a, a.pos, format!("indirection through explicit nil in {a}"));
                }
                let recv = self.eval_arg(dot, base)?;
                self.eval_fields(dot, recv, path, &[], None, a)
            }
            ArgKind::Pipe(p) => self.eval_pipeline(dot, p),
            ArgKind::Func(f) => self.call_func(dot, *f, &[], None, a),
        }
    }

    fn eval_fields(
        &mut self,
        dot: &Value,
        mut recv: Value,
        path: &[String],
        args: &[Arg],
        final_: Option<Value>,
        at: &Arg,
    ) -> R<Value> {
        let Some((last, init)) = path.split_last() else {
            return Ok(recv);
        };
        for name in init {
            recv = self.field(dot, recv, name, &[], None, at)?;
        }
        self.field(dot, recv, last, args, final_, at)
    }

    /// Go's `evalField` with `missingkey=zero`, plus the `time.Time` methods
    /// templates use on `toTime` results.
    fn field(
        &mut self,
        dot: &Value,
        recv: Value,
        name: &str,
        args: &[Arg],
        final_: Option<Value>,
        at: &Arg,
    ) -> R<Value> {
        let has_args = !args.is_empty() || final_.is_some();
        let no_args = |what: &str| -> R<()> {
            if has_args {
                return err(at, at.pos, format!("{name} {what}"));
            }
            Ok(())
        };
        match &recv {
            Value::Data(d) => {
                no_args("has arguments but cannot be invoked as function")?;
                match name {
                    "Labels" => Ok(Value::StrMap(d.labels.clone())),
                    "ExternalLabels" => Ok(Value::StrMap(d.external_labels.clone())),
                    "ExternalURL" => Ok(Value::Str(d.external_url.clone())),
                    "Value" => Ok(Value::Float(d.value)),
                    _ => err(at, at.pos, format!("can't evaluate field {name} in type {}", recv.type_name())),
                }
            }
            Value::Sample(s) => {
                no_args("has arguments but cannot be invoked as function")?;
                match name {
                    "Labels" => Ok(Value::StrMap(s.labels.clone())),
                    "Value" => Ok(Value::Float(s.value)),
                    _ => err(at, at.pos, format!("can't evaluate field {name} in type template.sample")),
                }
            }
            Value::StrMap(m) => {
                no_args("is not a method but has arguments")?;
                Ok(Value::str(m.get(name).unwrap_or("")))
            }
            Value::AnyMap(m) => {
                no_args("is not a method but has arguments")?;
                Ok(m.get(name).cloned().unwrap_or(Value::Nil))
            }
            Value::Time(ms) => {
                let ms = *ms;
                let mut vals = Vec::with_capacity(args.len() + 1);
                for a in args {
                    vals.push(self.eval_arg(dot, a)?);
                }
                if let Some(f) = final_ {
                    vals.push(f);
                }
                let want = |n: usize| -> R<()> {
                    if vals.len() != n {
                        return err(
                            at,
                            at.pos,
                            format!("wrong number of args for {name}: want {n} got {}", vals.len()),
                        );
                    }
                    Ok(())
                };
                match name {
                    "Unix" => want(0).map(|_| Value::Int(ms.div_euclid(1000))),
                    "UnixMilli" => want(0).map(|_| Value::Int(ms)),
                    "UnixNano" => want(0).map(|_| Value::Int(ms.saturating_mul(1_000_000))),
                    "UTC" | "Local" => want(0).map(|_| Value::Time(ms)),
                    "String" => want(0).map(|_| Value::str(&gotime::time_string(ms))),
                    "Format" => {
                        want(1)?;
                        match vals[0].as_str() {
                            Some(layout) => Ok(Value::str(&gotime::format(ms, layout))),
                            None => err(
                                at,
                                at.pos,
                                format!("wrong type for value; expected string; got {}", vals[0].type_name()),
                            ),
                        }
                    }
                    _ => err(at, at.pos, format!("can't evaluate field {name} in type *time.Time")),
                }
            }
            Value::Nil => err(at, at.pos, format!("nil pointer evaluating interface {{}}.{name}")),
            other => err(at, at.pos, format!("can't evaluate field {name} in type {}", other.type_name())),
        }
    }

    fn call_func(&mut self, dot: &Value, f: Func, args: &[Arg], final_: Option<Value>, at: &Arg) -> R<Value> {
        self.step(at.pos, at)?;
        let n = args.len() + usize::from(final_.is_some());
        if let Err(e) = f.check_arity(n) {
            return err(at, at.pos, e);
        }
        // `and`/`or` stop at the first argument that decides the result (Go 1.18+).
        if matches!(f, Func::And | Func::Or) {
            let want = matches!(f, Func::Or);
            let mut last = Value::Nil;
            for a in args {
                last = self.eval_arg(dot, a)?;
                if last.truth() == want {
                    return Ok(last);
                }
            }
            if let Some(v) = final_ {
                last = v;
            }
            return Ok(last);
        }
        let mut vals = Vec::with_capacity(n);
        for a in args {
            vals.push(self.eval_arg(dot, a)?);
        }
        if let Some(v) = final_ {
            vals.push(v);
        }
        match call(f, &vals, &self.env) {
            Ok(v) => Ok(v),
            // Go reports a mistyped argument at the argument's own node.
            Err(FuncError::Arg(i, m)) => match args.get(i) {
                Some(a) => err(a, a.pos, m),
                None => err(at, at.pos, m),
            },
            Err(FuncError::Call(m)) => err(at, at.pos, format!("error calling {}: {m}", f.name())),
        }
    }
}

/// Converts a label set into the `map[string]string` templates see.
pub(crate) fn labels_to_map(l: &crate::model::Labels) -> Rc<crate::model::Labels> {
    Rc::new(l.clone())
}
