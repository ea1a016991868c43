//! promlite's own evaluation plan: what the evaluator executes.
//!
//! The parser's AST is converted into these types in one place
//! ([`crate::promql::convert`]), so the parser could be swapped without
//! touching the evaluator. Durations and timestamps are milliseconds.

use crate::model::Matcher;

/// The type of value an expression produces (Prometheus's `ValueType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// A single number.
    Scalar,
    /// A string literal.
    String,
    /// One sample per series at the evaluation time.
    Vector,
    /// A range of samples per series.
    Matrix,
}

impl ValueType {
    /// The name Prometheus uses in messages and in the API's `resultType`.
    pub fn api_name(self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::String => "string",
            ValueType::Vector => "vector",
            ValueType::Matrix => "matrix",
        }
    }
}

/// The `@` modifier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum At {
    /// `@ start()`: the query's start.
    Start,
    /// `@ end()`: the query's end.
    End,
    /// `@ <timestamp>` in milliseconds.
    Time(i64),
}

/// An instant vector selector, with its matchers compiled by promlite.
#[derive(Debug, Clone)]
pub struct Selector {
    /// Matchers ANDed together (the metric name, when given, is one of them).
    pub matchers: Vec<Matcher>,
    /// Alternative matcher sets (`{a="1" or b="2"}`), each ANDed with nothing else.
    pub or_matchers: Vec<Vec<Matcher>>,
    /// `offset` in milliseconds (negative for a negative offset).
    pub offset: i64,
    /// `@` modifier.
    pub at: Option<At>,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
    /// `atan2`
    Atan2,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `<`
    Lt,
    /// `>=`
    Ge,
    /// `<=`
    Le,
    /// `and`
    And,
    /// `or`
    Or,
    /// `unless`
    Unless,
}

impl BinOp {
    /// Whether this is a comparison (`==`, `!=`, `>`, `<`, `>=`, `<=`).
    pub fn is_comparison(self) -> bool {
        matches!(self, BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Lt | BinOp::Ge | BinOp::Le)
    }

    /// Whether this is a set operator (`and`, `or`, `unless`).
    pub fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }
}

/// Cardinality of vector matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Card {
    /// Plain one-to-one.
    OneToOne,
    /// `group_left(labels)`.
    ManyToOne,
    /// `group_right(labels)`.
    OneToMany,
    /// Set operators.
    ManyToMany,
}

/// How the two sides of a vector/vector operation are matched.
#[derive(Debug, Clone)]
pub struct VectorMatching {
    /// Cardinality.
    pub card: Card,
    /// `on(...)` when true, `ignoring(...)` otherwise.
    pub on: bool,
    /// The `on`/`ignoring` labels.
    pub labels: Vec<String>,
    /// Extra labels taken from the "one" side (`group_left(x)`).
    pub include: Vec<String>,
}

/// Aggregation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggOp {
    /// `sum`
    Sum,
    /// `avg`
    Avg,
    /// `count`
    Count,
    /// `min`
    Min,
    /// `max`
    Max,
    /// `group`
    Group,
    /// `stddev`
    Stddev,
    /// `stdvar`
    Stdvar,
    /// `topk`
    Topk,
    /// `bottomk`
    Bottomk,
    /// `quantile`
    Quantile,
    /// `count_values`
    CountValues,
    /// `limitk`
    Limitk,
    /// `limit_ratio`
    LimitRatio,
}

/// Grouping of an aggregation.
#[derive(Debug, Clone)]
pub struct Grouping {
    /// `without(...)` when true, `by(...)` otherwise.
    pub without: bool,
    /// The listed labels.
    pub labels: Vec<String>,
}

/// One node of the evaluation plan.
#[derive(Debug, Clone)]
pub enum Plan {
    /// A number literal.
    Number(f64),
    /// A string literal.
    Str(String),
    /// An instant vector selector.
    Selector(Selector),
    /// A range vector selector `sel[range]`.
    MatrixSelector {
        /// The underlying selector.
        sel: Selector,
        /// Range in milliseconds.
        range: i64,
    },
    /// A subquery `expr[range:step]`.
    Subquery {
        /// The inner expression.
        expr: Box<Plan>,
        /// Range in milliseconds.
        range: i64,
        /// Step in milliseconds; `None` uses the engine default.
        step: Option<i64>,
        /// Offset in milliseconds.
        offset: i64,
        /// `@` modifier.
        at: Option<At>,
    },
    /// A function call.
    Call {
        /// The function's name (validated at conversion).
        func: &'static str,
        /// Its arguments.
        args: Vec<Plan>,
    },
    /// An aggregation.
    Aggregate {
        /// The operator.
        op: AggOp,
        /// The aggregated expression.
        expr: Box<Plan>,
        /// The parameter of topk, bottomk, quantile, count_values, limitk, limit_ratio.
        param: Option<Box<Plan>>,
        /// `by`/`without`.
        grouping: Grouping,
    },
    /// A binary operation.
    Binary {
        /// The operator.
        op: BinOp,
        /// Left operand.
        lhs: Box<Plan>,
        /// Right operand.
        rhs: Box<Plan>,
        /// Vector matching (vector/vector operations only).
        matching: Option<VectorMatching>,
        /// The `bool` modifier.
        return_bool: bool,
    },
    /// Unary minus.
    Neg(Box<Plan>),
}

impl Plan {
    /// The type of value this node produces.
    pub fn value_type(&self) -> ValueType {
        match self {
            Plan::Number(_) => ValueType::Scalar,
            Plan::Str(_) => ValueType::String,
            Plan::Selector(_) | Plan::Aggregate { .. } => ValueType::Vector,
            Plan::MatrixSelector { .. } | Plan::Subquery { .. } => ValueType::Matrix,
            Plan::Call { func, .. } => crate::promql::functions::return_type(func),
            Plan::Binary { lhs, rhs, .. } => {
                if lhs.value_type() == ValueType::Scalar && rhs.value_type() == ValueType::Scalar {
                    ValueType::Scalar
                } else {
                    ValueType::Vector
                }
            }
            Plan::Neg(e) => e.value_type(),
        }
    }
}
