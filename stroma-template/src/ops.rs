//! Operations on values that need no scope: truthiness, equality, order,
//! arithmetic on numbers, and size estimates for the build limit.

use std::cmp::Ordering;

use serde_json::{Number, Value};

use crate::ast::ArithOp;
use crate::error::{Fault, Result, TemplateErrorKind};

/// A value's type, with its article, as error messages say it.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// As in Python: null, false, zero and empty strings, lists and objects are false.
pub(crate) fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => match num(n) {
            Num::Int(i) => i != 0,
            Num::Float(f) => f != 0.0,
        },
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

/// A number as arithmetic sees it: integers that fit `i64` stay exact,
/// everything else is a float.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn float(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

pub(crate) fn num(n: &Number) -> Num {
    match n.as_i64() {
        Some(i) => Num::Int(i),
        None => Num::Float(n.as_f64().unwrap_or(f64::NAN)),
    }
}

fn num_cmp(a: &Number, b: &Number) -> Ordering {
    match (num(a), num(b)) {
        (Num::Int(x), Num::Int(y)) => x.cmp(&y),
        (x, y) => x.float().partial_cmp(&y.float()).unwrap_or(Ordering::Equal),
    }
}

/// Structural equality, where numbers compare by value (`1 == 1.0`).
/// Iterative, so deep values cannot overflow the stack.
pub(crate) fn equals(a: &Value, b: &Value) -> bool {
    let mut pending = Vec::new();
    let (mut a, mut b) = (a, b);
    loop {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                if num_cmp(x, y) != Ordering::Equal {
                    return false;
                }
            }
            (Value::Array(x), Value::Array(y)) => {
                if x.len() != y.len() {
                    return false;
                }
                pending.extend(x.iter().zip(y));
            }
            (Value::Object(x), Value::Object(y)) => {
                if x.len() != y.len() {
                    return false;
                }
                for (key, v) in x {
                    match y.get(key) {
                        Some(w) => pending.push((v, w)),
                        None => return false,
                    }
                }
            }
            (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => {
                return false;
            }
            (x, y) => {
                if x != y {
                    return false;
                }
            }
        }
        match pending.pop() {
            Some((x, y)) => (a, b) = (x, y),
            None => return true,
        }
    }
}

/// `<` and friends: numbers with numbers, strings with strings (by code point).
pub(crate) fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => Some(num_cmp(x, y)),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// `+ - * / %` on two numbers. Integers stay integers while exact: `/` gives
/// an integer when it divides evenly and a float otherwise; `%` takes the sign
/// of the divisor, as in Python.
pub(crate) fn arith(op: ArithOp, a: &Number, b: &Number, pos: usize) -> Result<Value> {
    let overflow = || Fault::new(TemplateErrorKind::Overflow, pos);
    let zero = || Fault::new(TemplateErrorKind::DivisionByZero, pos);
    match (num(a), num(b)) {
        (Num::Int(x), Num::Int(y)) => {
            let result = match op {
                ArithOp::Add => x.checked_add(y),
                ArithOp::Sub => x.checked_sub(y),
                ArithOp::Mul => x.checked_mul(y),
                ArithOp::Div if y == 0 => return Err(zero()),
                ArithOp::Div if x.wrapping_rem(y) == 0 => x.checked_div(y),
                ArithOp::Div => return float(x as f64 / y as f64, pos),
                ArithOp::Rem if y == 0 => return Err(zero()),
                ArithOp::Rem => {
                    // `wrapping_rem` is exact here: only MIN % -1 wraps, and it is 0.
                    let r = x.wrapping_rem(y);
                    Some(if r != 0 && (r < 0) != (y < 0) {
                        r + y
                    } else {
                        r
                    })
                }
            };
            result.map(Value::from).ok_or_else(overflow)
        }
        (x, y) => {
            let (x, y) = (x.float(), y.float());
            let result = match op {
                ArithOp::Add => x + y,
                ArithOp::Sub => x - y,
                ArithOp::Mul => x * y,
                ArithOp::Div | ArithOp::Rem if y == 0.0 => return Err(zero()),
                ArithOp::Div => x / y,
                ArithOp::Rem => {
                    let r = x % y;
                    if r != 0.0 && (r < 0.0) != (y < 0.0) {
                        r + y
                    } else {
                        r
                    }
                }
            };
            float(result, pos)
        }
    }
}

/// JSON has no infinities or NaN: such a result is an overflow.
fn float(f: f64, pos: usize) -> Result<Value> {
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| Fault::new(TemplateErrorKind::Overflow, pos))
}

/// Bytes counted per value, besides its text: about what a `Value` takes.
const SLOT: usize = std::mem::size_of::<Value>();

/// Estimated memory of `value`: its strings and keys plus a slot per value.
/// Stops counting once past `cap`, so a huge value costs no more than the
/// budget it breaks.
pub(crate) fn size(value: &Value, cap: usize) -> usize {
    let mut total = 0;
    let mut pending = Vec::new();
    let mut next = Some(value);
    while let Some(value) = next {
        total += SLOT;
        match value {
            Value::String(s) => total += s.len(),
            Value::Array(items) => pending.extend(items),
            Value::Object(map) => {
                for (key, item) in map {
                    total += key.len() + SLOT;
                    pending.push(item);
                }
            }
            _ => {}
        }
        if total > cap {
            return total;
        }
        next = pending.pop();
    }
    total
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn calc(op: ArithOp, a: Value, b: Value) -> Option<Value> {
        match (a, b) {
            (Value::Number(a), Value::Number(b)) => arith(op, &a, &b, 0).ok(),
            _ => None,
        }
    }

    #[test]
    fn remainder_takes_the_sign_of_the_divisor() {
        use ArithOp::Rem;
        assert_eq!(calc(Rem, json!(7), json!(3)), Some(json!(1)));
        assert_eq!(calc(Rem, json!(-7), json!(3)), Some(json!(2)));
        assert_eq!(calc(Rem, json!(7), json!(-3)), Some(json!(-2)));
        assert_eq!(calc(Rem, json!(-7), json!(-3)), Some(json!(-1)));
        assert_eq!(calc(Rem, json!(i64::MIN), json!(-1)), Some(json!(0)));
        assert_eq!(calc(Rem, json!(-7.5), json!(2)), Some(json!(0.5)));
        assert_eq!(calc(Rem, json!(1), json!(0)), None);
    }

    #[test]
    fn division_is_exact_when_it_can_be() {
        use ArithOp::Div;
        assert_eq!(calc(Div, json!(8), json!(-2)), Some(json!(-4)));
        assert_eq!(calc(Div, json!(1), json!(4)), Some(json!(0.25)));
        assert_eq!(calc(Div, json!(i64::MIN), json!(-1)), None);
        assert_eq!(calc(Div, json!(1.0), json!(0.0)), None);
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        assert_eq!(calc(ArithOp::Add, json!(i64::MAX), json!(1)), None);
        assert_eq!(calc(ArithOp::Mul, json!(i64::MIN), json!(-1)), None);
        assert_eq!(calc(ArithOp::Mul, json!(1e308), json!(10.0)), None);
        // u64 beyond i64 is a float, as JSON allows.
        assert_eq!(
            calc(ArithOp::Add, json!(u64::MAX), json!(0)),
            Some(json!(u64::MAX as f64))
        );
    }

    #[test]
    fn equality_and_truth() {
        assert!(equals(&json!([1, {"a": 2.0}]), &json!([1.0, {"a": 2}])));
        assert!(!equals(&json!({"a": 1}), &json!({"b": 1})));
        assert!(!equals(&json!([]), &json!({})));
        assert!(!equals(&json!(null), &json!(false)));
        for falsy in [
            json!(null),
            json!(false),
            json!(0),
            json!(-0.0),
            json!(""),
            json!([]),
            json!({}),
        ] {
            assert!(!truthy(&falsy), "{falsy}");
        }
    }

    #[test]
    fn size_stops_past_the_cap() {
        let big = json!(["x".repeat(1000), "y".repeat(1000)]);
        assert!(size(&big, usize::MAX) > 2000);
        assert!(size(&big, 10) < 1100);
    }
}
