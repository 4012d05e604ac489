//! Evaluation of expressions over a [`Resolve`] scope.
//!
//! Values flow as `Cow<Value>`: what the scope or the template already holds
//! is borrowed, and a field or index of a borrowed value is borrowed too, so
//! reading `a.b[0].c` clones nothing. Only what an expression builds (lists,
//! concatenations, function results) is owned, and its size is charged to
//! [`Limits::max_build_len`].

use std::borrow::Cow;

use serde_json::Value;

use crate::Resolve;
use crate::ast::{AccessKind, ArithOp, CmpOp, Expr, ExprKind, HierPath, PathStep};
use crate::error::{Fault, Result, TemplateErrorKind};
use crate::functions::Func;
use crate::limits::{Limit, Limits};
use crate::ops::{self, type_name};
use crate::render;

type Val<'a> = Cow<'a, Value>;

pub(crate) struct Eval<'a> {
    src: &'a str,
    scope: &'a dyn Resolve,
    limits: &'a Limits,
    /// Bytes of values built so far.
    built: usize,
    /// Inside the first argument of `default`: an absence is
    /// `Fault::Absent`, for `default` to catch, rather than an error.
    lenient: bool,
}

/// How many keys a "no field" error lists.
const KEYS_SHOWN: usize = 20;

impl<'a> Eval<'a> {
    pub fn new(src: &'a str, scope: &'a dyn Resolve, limits: &'a Limits) -> Self {
        Self {
            src,
            scope,
            limits,
            built: 0,
            lenient: false,
        }
    }

    fn text(&self, range: &std::ops::Range<usize>) -> &'a str {
        self.src.get(range.clone()).unwrap_or("")
    }

    fn charge(&mut self, bytes: usize, pos: usize) -> Result<()> {
        self.built = self.built.saturating_add(bytes);
        if self.built > self.limits.max_build_len {
            return Err(Fault::limit(
                Limit::BuildSize,
                self.limits.max_build_len,
                pos,
            ));
        }
        Ok(())
    }

    /// An owned copy, charged if it had to be cloned.
    fn own(&mut self, value: Val<'a>, pos: usize) -> Result<Value> {
        match value {
            Cow::Owned(v) => Ok(v),
            Cow::Borrowed(v) => {
                let cap = self.limits.max_build_len.saturating_sub(self.built);
                self.charge(ops::size(v, cap), pos)?;
                Ok(v.clone())
            }
        }
    }

    fn check_list_len(&self, len: usize, pos: usize) -> Result<()> {
        if len > self.limits.max_list_len {
            return Err(Fault::limit(
                Limit::ListLength,
                self.limits.max_list_len,
                pos,
            ));
        }
        Ok(())
    }

    /// A string an expression built: within the output limit, and charged.
    fn built_string(&mut self, s: String, pos: usize) -> Result<Val<'a>> {
        if s.len() > self.limits.max_output_len {
            return Err(self.output_exceeded(pos));
        }
        self.charge(s.len(), pos)?;
        Ok(Cow::Owned(Value::String(s)))
    }

    pub fn output_exceeded(&self, pos: usize) -> Fault {
        Fault::limit(Limit::OutputLength, self.limits.max_output_len, pos)
    }

    /// The value of `expr`. This is the hub of the evaluator's recursion, so
    /// it only dispatches: each kind's work (and its stack frame) is in a
    /// function of its own.
    pub fn eval(&mut self, expr: &'a Expr) -> Result<Val<'a>> {
        match &expr.kind {
            ExprKind::Literal(v) => Ok(Cow::Borrowed(v)),
            ExprKind::Var(_) | ExprKind::Hier(_) | ExprKind::Access(..) => self.lookup(expr),
            ExprKind::List(items) => self.list(items, expr.pos),
            ExprKind::Neg(inner) => self.neg(inner, expr.pos),
            ExprKind::Not(inner) => {
                let value = self.eval(inner)?;
                Ok(Cow::Owned(Value::Bool(!ops::truthy(&value))))
            }
            ExprKind::Arith(first, rest) => self.arith_chain(first, rest),
            ExprKind::And(items) => self.logic(items, false),
            ExprKind::Or(items) => self.logic(items, true),
            ExprKind::Compare(operands, op) => self.compare(operands, *op, expr.pos),
            ExprKind::Cond(parts) => self.cond(parts),
            ExprKind::Call(func, args) => self.call(*func, args, expr.pos),
        }
    }

    fn list(&mut self, items: &'a [Expr], pos: usize) -> Result<Val<'a>> {
        self.check_list_len(items.len(), pos)?;
        self.charge(items.len() * std::mem::size_of::<Value>(), pos)?;
        let mut list = Vec::with_capacity(items.len());
        for item in items {
            let value = self.eval(item)?;
            list.push(self.own(value, item.pos)?);
        }
        Ok(Cow::Owned(Value::Array(list)))
    }

    fn neg(&mut self, inner: &'a Expr, pos: usize) -> Result<Val<'a>> {
        let value = self.eval(inner)?;
        match &*value {
            Value::Number(n) => match ops::num(n) {
                ops::Num::Int(i) => i
                    .checked_neg()
                    .map(|n| Cow::Owned(Value::from(n)))
                    .ok_or_else(|| Fault::new(TemplateErrorKind::Overflow, pos)),
                ops::Num::Float(f) => Ok(Cow::Owned(Value::from(-f))),
            },
            other => Err(Fault::type_mismatch(
                format!("cannot negate {}", type_name(other)),
                pos,
            )),
        }
    }

    fn arith_chain(
        &mut self,
        first: &'a Expr,
        rest: &'a [(ArithOp, usize, Expr)],
    ) -> Result<Val<'a>> {
        let mut acc = self.eval(first)?;
        for (op, op_pos, rhs) in rest {
            let rhs = self.eval(rhs)?;
            acc = self.arith(*op, acc, rhs, *op_pos)?;
        }
        Ok(acc)
    }

    /// `and` (`want` false) or `or` (`want` true): as in Python, the operand
    /// that decided.
    fn logic(&mut self, items: &'a [Expr], want: bool) -> Result<Val<'a>> {
        let mut last = Cow::Owned(Value::Null);
        for item in items {
            last = self.eval(item)?;
            if ops::truthy(&last) == want {
                break;
            }
        }
        Ok(last)
    }

    fn compare(&mut self, operands: &'a [Expr; 2], op: CmpOp, pos: usize) -> Result<Val<'a>> {
        let [lhs, rhs] = operands;
        let (a, b) = (self.eval(lhs)?, self.eval(rhs)?);
        let result = match op {
            CmpOp::Eq => ops::equals(&a, &b),
            CmpOp::Ne => !ops::equals(&a, &b),
            _ => {
                let Some(order) = ops::order(&a, &b) else {
                    return Err(Fault::type_mismatch(
                        format!(
                            "cannot compare {} with {} using `{}`",
                            type_name(&a),
                            type_name(&b),
                            op.symbol()
                        ),
                        pos,
                    ));
                };
                match op {
                    CmpOp::Lt => order.is_lt(),
                    CmpOp::Le => order.is_le(),
                    CmpOp::Gt => order.is_gt(),
                    _ => order.is_ge(),
                }
            }
        };
        Ok(Cow::Owned(Value::Bool(result)))
    }

    fn cond(&mut self, parts: &'a [Expr; 3]) -> Result<Val<'a>> {
        let [then, cond, otherwise] = parts;
        let cond = self.eval(cond)?;
        if ops::truthy(&cond) {
            self.eval(then)
        } else {
            self.eval(otherwise)
        }
    }

    /// Reads a variable, node path or access chain. Inside `default`'s first
    /// argument ([`Self::lenient`]), every absence (an unknown variable or
    /// node, a missing field, an index out of range, a field or index of
    /// null) is `Fault::Absent` instead of an error.
    fn lookup(&mut self, expr: &'a Expr) -> Result<Val<'a>> {
        match &expr.kind {
            ExprKind::Var(range) => {
                let name = self.text(range);
                match self.scope.var(name) {
                    Some(value) => Ok(value),
                    None if self.lenient => Err(Fault::Absent),
                    None => Err(self.unknown_variable(name, expr.pos)),
                }
            }
            ExprKind::Hier(path) => self.hier(path, expr.pos),
            ExprKind::Access(base, steps) => {
                let mut value = self.lookup(base)?;
                for step in steps {
                    value = match &step.kind {
                        AccessKind::Field(name) => {
                            let name = self.text(name);
                            // The common case, inline: a field of a borrowed object.
                            if let Cow::Borrowed(Value::Object(map)) = value
                                && let Some(field) = map.get(name)
                            {
                                value = Cow::Borrowed(field);
                                continue;
                            }
                            self.field(value, name, step.pos, None)?
                        }
                        AccessKind::Index(index) => {
                            let index = self.eval(index)?;
                            self.index(value, &index, step.pos)?
                        }
                    };
                }
                Ok(value)
            }
            _ => self.eval(expr),
        }
    }

    #[cold]
    #[inline(never)]
    fn unknown_variable(&self, name: &str, pos: usize) -> Fault {
        Fault::new(
            TemplateErrorKind::UnknownVariable {
                name: name.to_owned(),
                in_scope: self.scope.var_names(),
            },
            pos,
        )
    }

    /// The longest prefix of the path that names a node, then the rest read
    /// as fields and indices of its output.
    fn hier(&mut self, path: &'a HierPath, pos: usize) -> Result<Val<'a>> {
        let start = path.text.start;
        for node_parts in (path.min_node_parts..=path.parts.len()).rev() {
            let Some(last) = node_parts.checked_sub(1).and_then(|i| path.parts.get(i)) else {
                continue;
            };
            let Some(node) = self.src.get(start..last.end) else {
                continue;
            };
            let Some(mut value) = self.scope.node(node) else {
                continue;
            };
            for part in path.parts.get(node_parts..).unwrap_or_default() {
                value = match &part.step {
                    PathStep::Field(name) => {
                        self.field(value, self.text(name), part.start, Some(node))?
                    }
                    PathStep::Index(i) => self.index_int(value, *i, part.start)?,
                };
            }
            return Ok(value);
        }
        if self.lenient {
            return Err(Fault::Absent);
        }
        let text = self.text(&path.text);
        Err(Fault::new(
            TemplateErrorKind::UnknownNode {
                path: text.to_owned(),
                nearest: self.scope.nearest_nodes(text),
            },
            pos,
        ))
    }

    fn field(
        &mut self,
        value: Val<'a>,
        name: &str,
        pos: usize,
        node: Option<&str>,
    ) -> Result<Val<'a>> {
        let found = match value {
            Cow::Borrowed(Value::Object(map)) => match map.get(name) {
                Some(v) => return Ok(Cow::Borrowed(v)),
                None => map,
            },
            // An owned object gives up the field: moved out, not cloned.
            Cow::Owned(Value::Object(mut map)) => match map.remove(name) {
                Some(v) => return Ok(Cow::Owned(v)),
                None => return self.missing(name, &map, pos, node),
            },
            v if self.lenient && v.is_null() => return Err(Fault::Absent),
            v => {
                return Err(Fault::type_mismatch(
                    format!("cannot read field `{name}` of {}", type_name(&v)),
                    pos,
                ));
            }
        };
        self.missing(name, found, pos, node)
    }

    fn missing(
        &self,
        name: &str,
        map: &serde_json::Map<String, Value>,
        pos: usize,
        node: Option<&str>,
    ) -> Result<Val<'a>> {
        if self.lenient {
            return Err(Fault::Absent);
        }
        Err(Fault::new(
            TemplateErrorKind::MissingField {
                field: name.to_owned(),
                node: node.map(str::to_owned),
                available: map.keys().take(KEYS_SHOWN).cloned().collect(),
            },
            pos,
        ))
    }

    fn index(&mut self, value: Val<'a>, index: &Value, pos: usize) -> Result<Val<'a>> {
        match (&*value, index) {
            (Value::Array(_) | Value::String(_), Value::Number(n)) => match n.as_i64() {
                Some(i) => self.index_int(value, i, pos),
                None if n.is_u64() => self.index_int(value, i64::MAX, pos),
                None => Err(Fault::type_mismatch(
                    format!("an index must be an integer, found {n}"),
                    pos,
                )),
            },
            (Value::Object(_), Value::String(key)) => self.field(value, key, pos, None),
            (Value::Null, _) if self.lenient => Err(Fault::Absent),
            (Value::Array(_) | Value::String(_) | Value::Object(_), other) => {
                let wants = if value.is_object() {
                    "a string key"
                } else {
                    "an integer"
                };
                Err(Fault::type_mismatch(
                    format!(
                        "cannot index {} with {}; it takes {wants}",
                        type_name(&value),
                        type_name(other)
                    ),
                    pos,
                ))
            }
            (other, _) => Err(Fault::type_mismatch(
                format!("cannot index {}", type_name(other)),
                pos,
            )),
        }
    }

    /// Item `i` of a list, or character `i` of a string; negative `i` counts
    /// from the end.
    fn index_int(&mut self, value: Val<'a>, i: i64, pos: usize) -> Result<Val<'a>> {
        let len = match &*value {
            Value::Array(items) => items.len(),
            Value::String(s) => s.chars().count(),
            Value::Null if self.lenient => return Err(Fault::Absent),
            other => {
                return Err(Fault::type_mismatch(
                    format!("cannot index {} with a number", type_name(other)),
                    pos,
                ));
            }
        };
        let at = if i < 0 {
            i64::try_from(len).ok().and_then(|len| len.checked_add(i))
        } else {
            Some(i)
        };
        let Some(at) = at
            .and_then(|at| usize::try_from(at).ok())
            .filter(|&at| at < len)
        else {
            if self.lenient {
                return Err(Fault::Absent);
            }
            return Err(Fault::new(
                TemplateErrorKind::IndexOutOfRange { index: i, len },
                pos,
            ));
        };
        let item = match value {
            Cow::Borrowed(Value::Array(items)) => items.get(at).map(Cow::Borrowed),
            Cow::Owned(Value::Array(mut items)) if at < items.len() => {
                Some(Cow::Owned(items.swap_remove(at)))
            }
            ref v => match v.as_str().and_then(|s| s.chars().nth(at)) {
                Some(c) => Some(self.built_string(c.to_string(), pos)?),
                None => None,
            },
        };
        // `at` was checked against the length: this is never absent.
        item.ok_or(Fault::Absent)
    }

    fn arith(&mut self, op: ArithOp, a: Val<'a>, b: Val<'a>, pos: usize) -> Result<Val<'a>> {
        match (&*a, &*b, op) {
            (Value::Number(x), Value::Number(y), _) => ops::arith(op, x, y, pos).map(Cow::Owned),
            (Value::String(x), Value::String(y), ArithOp::Add) => {
                let len = x.len().saturating_add(y.len());
                if len > self.limits.max_output_len {
                    return Err(self.output_exceeded(pos));
                }
                self.charge(y.len(), pos)?;
                // Appends in place when the left side is already ours, so
                // `a + b + c + ...` stays linear.
                let mut s = match a {
                    Cow::Owned(Value::String(s)) => s,
                    _ => {
                        self.charge(x.len(), pos)?;
                        let mut s = String::with_capacity(len);
                        s.push_str(x);
                        s
                    }
                };
                s.push_str(b.as_str().unwrap_or_default());
                Ok(Cow::Owned(Value::String(s)))
            }
            (Value::Array(x), Value::Array(y), ArithOp::Add) => {
                self.check_list_len(x.len().saturating_add(y.len()), pos)?;
                let mut list = match self.own(a, pos)? {
                    Value::Array(list) => list,
                    _ => Vec::new(),
                };
                if let Value::Array(tail) = self.own(b, pos)? {
                    list.extend(tail);
                }
                Ok(Cow::Owned(Value::Array(list)))
            }
            (x, y, op) => Err(Fault::type_mismatch(
                format!(
                    "cannot apply `{}` to {} and {}",
                    op.symbol(),
                    type_name(x),
                    type_name(y)
                ),
                pos,
            )),
        }
    }

    fn call(&mut self, func: Func, args: &'a [Expr], pos: usize) -> Result<Val<'a>> {
        // The parser checked the arity; a missing argument is never read.
        let (Some(first), second) = (args.first(), args.get(1)) else {
            return Ok(Cow::Owned(Value::Null));
        };
        if func == Func::Default {
            let outer = std::mem::replace(&mut self.lenient, true);
            let value = self.eval(first);
            self.lenient = outer;
            match value {
                Ok(value) if !value.is_null() => return Ok(value),
                // Null or absent: the fallback, read as leniently as this
                // `default` itself (lenient only inside an outer one).
                Ok(_) | Err(Fault::Absent) => {}
                Err(fault) => return Err(fault),
            }
            return match second {
                Some(fallback) => self.eval(fallback),
                None => Ok(Cow::Owned(Value::Null)),
            };
        }
        let value = self.eval(first)?;
        let wrong = |wants: &str| {
            Fault::type_mismatch(
                format!(
                    "`{}` takes {wants}, found {}",
                    func.name(),
                    type_name(&value)
                ),
                first.pos,
            )
        };
        match func {
            Func::Len => {
                let len = match &*value {
                    Value::String(s) => s.chars().count(),
                    Value::Array(items) => items.len(),
                    Value::Object(map) => map.len(),
                    _ => return Err(wrong("a string, list or object")),
                };
                Ok(Cow::Owned(Value::from(len)))
            }
            Func::Upper | Func::Lower | Func::Trim => {
                let Some(s) = value.as_str() else {
                    return Err(wrong("a string"));
                };
                if s.len() > self.limits.max_output_len {
                    return Err(self.output_exceeded(pos));
                }
                let out = match func {
                    Func::Upper => s.to_uppercase(),
                    Func::Lower => s.to_lowercase(),
                    _ => s.trim().to_owned(),
                };
                self.built_string(out, pos)
            }
            Func::Keys => {
                let Value::Object(map) = &*value else {
                    return Err(wrong("an object"));
                };
                self.check_list_len(map.len(), pos)?;
                let keys: usize = map
                    .keys()
                    .map(|k| k.len() + 2 * std::mem::size_of::<Value>())
                    .sum();
                self.charge(keys, pos)?;
                let keys = map.keys().map(|k| Value::String(k.clone())).collect();
                Ok(Cow::Owned(Value::Array(keys)))
            }
            Func::Json => {
                let mut out = String::new();
                render::write_json(&mut out, &value, self.limits.max_output_len)
                    .map_err(|_| self.output_exceeded(pos))?;
                self.built_string(out, pos)
            }
            Func::Join => {
                let Value::Array(items) = &*value else {
                    return Err(wrong("a list and a separator string"));
                };
                let sep = match second {
                    Some(sep) => self.eval(sep)?,
                    None => Cow::Owned(Value::Null),
                };
                let Some(sep_str) = sep.as_str() else {
                    return Err(Fault::type_mismatch(
                        format!("`join` takes a separator string, found {}", type_name(&sep)),
                        second.map_or(pos, |s| s.pos),
                    ));
                };
                let max = self.limits.max_output_len;
                let mut out = String::new();
                for (i, item) in items.iter().enumerate() {
                    let pushed = if i == 0 {
                        Ok(())
                    } else {
                        render::push_str(&mut out, sep_str, max)
                    };
                    pushed
                        .and_then(|()| render::push_text(&mut out, item, max))
                        .map_err(|_| self.output_exceeded(pos))?;
                }
                self.built_string(out, pos)
            }
            Func::Default => Ok(value),
        }
    }
}
