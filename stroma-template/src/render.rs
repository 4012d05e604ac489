//! Values into text: strings as they are, everything else as compact JSON.
//!
//! The JSON writer is our own, iterative, and checks the output limit as it
//! goes: a deeply nested value cannot overflow the stack, and a huge one
//! fails once past the limit instead of first being written out in full.
//! Its output is byte for byte what `serde_json::to_string` gives.

use std::fmt::Write as _;

use serde_json::Value;

/// The output limit was hit.
#[derive(Debug)]
pub(crate) struct Exceeded;

type Result = std::result::Result<(), Exceeded>;

/// Appends `value` as template text: a string unquoted, anything else
/// (null included) as compact JSON.
pub(crate) fn push_text(out: &mut String, value: &Value, max: usize) -> Result {
    match value {
        Value::String(s) => push_str(out, s, max),
        other => write_json(out, other, max),
    }
}

pub(crate) fn push_str(out: &mut String, s: &str, max: usize) -> Result {
    if s.len() > max.saturating_sub(out.len()) {
        return Err(Exceeded);
    }
    out.push_str(s);
    Ok(())
}

/// A list or object being written; `first` until its first item is out.
enum Frame<'v> {
    List {
        items: std::slice::Iter<'v, Value>,
        first: bool,
    },
    Object {
        entries: serde_json::map::Iter<'v>,
        first: bool,
    },
}

/// Appends `value` as compact JSON.
pub(crate) fn write_json(out: &mut String, value: &Value, max: usize) -> Result {
    let mut stack: Vec<Frame<'_>> = Vec::new();
    open(out, value, &mut stack, max)?;
    loop {
        let next = match stack.last_mut() {
            // Closing brackets are not checked one by one: once, here.
            None if out.len() > max => return Err(Exceeded),
            None => return Ok(()),
            Some(Frame::List { items, first }) => match items.next() {
                Some(item) => {
                    if !std::mem::take(first) {
                        out.push(',');
                    }
                    item
                }
                None => {
                    out.push(']');
                    stack.pop();
                    continue;
                }
            },
            Some(Frame::Object { entries, first }) => match entries.next() {
                Some((key, item)) => {
                    if !std::mem::take(first) {
                        out.push(',');
                    }
                    write_string(out, key, max)?;
                    out.push(':');
                    item
                }
                None => {
                    out.push('}');
                    stack.pop();
                    continue;
                }
            },
        };
        open(out, next, &mut stack, max)?;
    }
}

/// Writes a scalar whole, or the opening bracket of a list or object and
/// pushes its frame.
fn open<'v>(out: &mut String, value: &'v Value, stack: &mut Vec<Frame<'v>>, max: usize) -> Result {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => match n.as_i64() {
            Some(i) => push_int(out, i),
            // `Number`'s Display is serde_json's own serialization (itoa / ryu).
            None => {
                let _ = write!(out, "{n}");
            }
        },
        Value::String(s) => write_string(out, s, max)?,
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push('[');
            stack.push(Frame::List {
                items: items.iter(),
                first: true,
            });
        }
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Object(map) => {
            out.push('{');
            stack.push(Frame::Object {
                entries: map.iter(),
                first: true,
            });
        }
    }
    if out.len() > max {
        return Err(Exceeded);
    }
    Ok(())
}

/// A JSON string literal, escaped as serde_json escapes it.
fn write_string(out: &mut String, s: &str, max: usize) -> Result {
    // Escaping at most sextuples a byte: refuse early what cannot fit anyway.
    if s.len() + 2 > max.saturating_sub(out.len()) {
        return Err(Exceeded);
    }
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // Every byte matched above is ASCII, so `i` is a char boundary.
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
        if out.len() > max {
            return Err(Exceeded);
        }
    }
    out.push_str(&s[start..]);
    out.push('"');
    if out.len() > max {
        return Err(Exceeded);
    }
    Ok(())
}

/// An integer in decimal, without the formatting machinery: integers are
/// the most common non-string values in templates.
fn push_int(out: &mut String, i: i64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut n = i.unsigned_abs();
    // At most 20 digits (u64::MAX): `start` stays in bounds.
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        start -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        out.push('-');
    }
    out.push_str(std::str::from_utf8(&digits[start..]).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn integers_as_serde_json_writes_them() {
        for i in [0, 1, -1, 9, 10, -10, 1234567890, i64::MAX, i64::MIN] {
            let mut out = String::new();
            push_int(&mut out, i);
            assert_eq!(out, i.to_string());
        }
    }

    #[test]
    fn json_stops_at_the_limit() {
        let value = json!({"a": [1, 2, "three"], "b": null});
        let full = serde_json::to_string(&value).unwrap();
        for max in 0..full.len() {
            let mut out = String::new();
            assert!(write_json(&mut out, &value, max).is_err(), "{max}");
        }
        let mut out = String::from("x");
        write_json(&mut out, &value, full.len() + 1).unwrap();
        assert_eq!(out, format!("x{full}"));
    }
}
