//! The parsed form of a template. Names and paths are byte ranges into the
//! template source, so parsing copies no text but string literals.

use std::ops::Range;

use serde_json::Value;

use crate::functions::Func;

/// One piece of a template, in source order.
#[derive(Clone, Debug)]
pub(crate) enum Segment {
    /// Literal text: this range of the source, as is.
    Text(Range<usize>),
    /// A `$var{}`, `$hier{}` or `$expr{}`, rendered by value.
    Value(Expr),
}

/// An expression, with the byte position its errors point at.
#[derive(Clone, Debug)]
pub(crate) struct Expr {
    pub kind: ExprKind,
    pub pos: usize,
}

#[derive(Clone, Debug)]
pub(crate) enum ExprKind {
    Literal(Value),
    List(Vec<Expr>),
    /// A variable: a bare name or `$var{name}`; the range is the name.
    Var(Range<usize>),
    Hier(Box<HierPath>),
    /// Field reads and indices after a base, flat so that a long chain
    /// `a.b.c...` does not nest.
    Access(Box<Expr>, Vec<Access>),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    /// `first op e op e ...` at one precedence level, flat for the same reason.
    Arith(Box<Expr>, Vec<(ArithOp, usize, Expr)>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    /// `lhs op rhs`.
    Compare(Box<[Expr; 2]>, CmpOp),
    /// `then if cond else otherwise`, in that order.
    Cond(Box<[Expr; 3]>),
    Call(Func, Vec<Expr>),
}

/// One `.field` or `[index]` after a base.
#[derive(Clone, Debug)]
pub(crate) struct Access {
    pub pos: usize,
    pub kind: AccessKind,
}

#[derive(Clone, Debug)]
pub(crate) enum AccessKind {
    Field(Range<usize>),
    Index(Expr),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl ArithOp {
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Add => "+",
            Self::Sub => "-",
            Self::Mul => "*",
            Self::Div => "/",
            Self::Rem => "%",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}

/// A `$hier{}` path: the node is the longest prefix the resolver knows, the
/// rest is read as fields and indices of its output.
#[derive(Clone, Debug)]
pub(crate) struct HierPath {
    /// The whole path (trimmed).
    pub text: Range<usize>,
    /// Its parts in order: a segment name (with its `#k`), or an `[n]`.
    pub parts: Vec<PathPart>,
    /// The node is at least this many parts: a `#k` names a node, never a field.
    pub min_node_parts: usize,
}

#[derive(Clone, Debug)]
pub(crate) struct PathPart {
    /// Where this part starts, for errors.
    pub start: usize,
    /// Where this part ends: a prefix of the path ends at one of these.
    pub end: usize,
    pub step: PathStep,
}

#[derive(Clone, Debug)]
pub(crate) enum PathStep {
    /// A segment's name, read as a field when past the node.
    Field(Range<usize>),
    Index(i64),
}
