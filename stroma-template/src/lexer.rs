//! Tokens of an expression, from just past `$expr{` to its closing `}`.

use std::ops::Range;

use crate::ast::HierPath;
use crate::error::{Fault, Result};
use crate::path::{self, show_char};

#[derive(Clone, Debug)]
pub(crate) enum Tok {
    Int(i64),
    Float(f64),
    Str(String),
    /// A name or keyword; its text is the token's range.
    Ident,
    /// `$var{name}`: the name's range.
    Var(Range<usize>),
    Hier(Box<HierPath>),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// The `}` that ends the expression.
    Close,
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

pub(crate) struct Lexer<'s> {
    src: &'s str,
    pos: usize,
    /// Where the `$expr{` starts: an unclosed one is reported there.
    open: usize,
    max_path_parts: usize,
}

pub(crate) fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

pub(crate) fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

impl<'s> Lexer<'s> {
    pub fn new(src: &'s str, open: usize, content: usize, max_path_parts: usize) -> Self {
        Self {
            src,
            pos: content,
            open,
            max_path_parts,
        }
    }

    fn peek_char(&self, at: usize) -> Option<char> {
        self.src.get(at..).and_then(|s| s.chars().next())
    }

    fn unclosed(&self) -> Fault {
        Fault::syntax("unclosed `$expr{`", self.open)
    }

    pub fn next_token(&mut self) -> Result<Token> {
        let rest = self.src.get(self.pos..).unwrap_or("");
        let skipped = rest.len() - rest.trim_start().len();
        self.pos += skipped;
        let start = self.pos;
        let c = self.peek_char(start).ok_or_else(|| self.unclosed())?;
        let next = self.peek_char(start + c.len_utf8());
        let (tok, len) = match c {
            '}' => (Tok::Close, 1),
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            '[' => (Tok::LBracket, 1),
            ']' => (Tok::RBracket, 1),
            ',' => (Tok::Comma, 1),
            '.' => (Tok::Dot, 1),
            '+' => (Tok::Plus, 1),
            '-' => (Tok::Minus, 1),
            '*' => (Tok::Star, 1),
            '/' => (Tok::Slash, 1),
            '%' => (Tok::Percent, 1),
            '=' if next == Some('=') => (Tok::Eq, 2),
            '!' if next == Some('=') => (Tok::Ne, 2),
            '<' if next == Some('=') => (Tok::Le, 2),
            '>' if next == Some('=') => (Tok::Ge, 2),
            '<' => (Tok::Lt, 1),
            '>' => (Tok::Gt, 1),
            '=' => return Err(Fault::syntax("unexpected `=`; compare with `==`", start)),
            '!' => return Err(Fault::syntax("unexpected `!`; negate with `not`", start)),
            '&' if next == Some('&') => {
                return Err(Fault::syntax("unexpected `&&`; write `and`", start));
            }
            '|' if next == Some('|') => {
                return Err(Fault::syntax("unexpected `||`; write `or`", start));
            }
            '"' | '\'' => return self.string(c),
            '0'..='9' => return self.number(),
            '$' => return self.reference(),
            c if is_ident_start(c) => {
                let end = self.src[start..]
                    .find(|c: char| !is_ident_char(c))
                    .map_or(self.src.len(), |i| start + i);
                self.pos = end;
                return Ok(Token {
                    tok: Tok::Ident,
                    start,
                    end,
                });
            }
            c => {
                return Err(Fault::syntax(
                    format!("unexpected {} in expression", show_char(c)),
                    start,
                ));
            }
        };
        self.pos = start + len;
        Ok(Token {
            tok,
            start,
            end: self.pos,
        })
    }

    /// A `$var{..}` or `$hier{..}` inside the expression.
    fn reference(&mut self) -> Result<Token> {
        let start = self.pos;
        let rest = &self.src[start..];
        let (tok, end) = if rest.starts_with("$var{") {
            let (name, end) = path::parse_var(self.src, start, start + 5)?;
            (Tok::Var(name), end)
        } else if rest.starts_with("$hier{") {
            let (path, end) = path::parse_hier(self.src, start, start + 6, self.max_path_parts)?;
            (Tok::Hier(Box::new(path)), end)
        } else if rest.starts_with("$expr{") {
            return Err(Fault::syntax(
                "`$expr{` inside `$expr{}`: write the inner expression in parentheses",
                start,
            ));
        } else {
            return Err(Fault::syntax(
                "unexpected `$` in expression; references are `$var{name}` and `$hier{path}`",
                start,
            ));
        };
        self.pos = end;
        Ok(Token { tok, start, end })
    }

    fn number(&mut self) -> Result<Token> {
        let start = self.pos;
        let bytes = self.src.as_bytes();
        let digits = |mut i: usize| {
            while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            i
        };
        let mut end = digits(start);
        let mut float = false;
        if bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
            end = digits(end + 1);
            float = true;
        }
        if matches!(bytes.get(end), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(bytes.get(end + 1), Some(b'+' | b'-')));
            if bytes.get(end + 1 + sign).is_some_and(u8::is_ascii_digit) {
                end = digits(end + 1 + sign);
                float = true;
            }
        }
        if let Some(c) = self.peek_char(end).filter(|&c| is_ident_char(c)) {
            return Err(Fault::syntax(
                format!("unexpected {} after a number", show_char(c)),
                end,
            ));
        }
        let text = &self.src[start..end];
        let tok = if float {
            match text.parse::<f64>() {
                Ok(f) if f.is_finite() => Tok::Float(f),
                _ => {
                    return Err(Fault::syntax(
                        format!("number `{text}` is out of range"),
                        start,
                    ));
                }
            }
        } else {
            match text.parse::<i64>() {
                Ok(n) => Tok::Int(n),
                Err(_) => {
                    return Err(Fault::syntax(
                        format!("integer `{text}` is out of range"),
                        start,
                    ));
                }
            }
        };
        self.pos = end;
        Ok(Token { tok, start, end })
    }

    fn string(&mut self, quote: char) -> Result<Token> {
        let start = self.pos;
        let mut out = String::new();
        let mut chars = self.src[start + 1..].char_indices();
        while let Some((i, c)) = chars.next() {
            let at = start + 1 + i;
            match c {
                c if c == quote => {
                    self.pos = at + 1;
                    return Ok(Token {
                        tok: Tok::Str(out),
                        start,
                        end: self.pos,
                    });
                }
                '\\' => {
                    let escaped = match chars.next() {
                        Some((_, c @ ('\\' | '"' | '\''))) => c,
                        Some((_, 'n')) => '\n',
                        Some((_, 'r')) => '\r',
                        Some((_, 't')) => '\t',
                        Some((_, '0')) => '\0',
                        Some((_, 'u')) => self.unicode_escape(&mut chars, at)?,
                        Some((_, c)) => {
                            return Err(Fault::syntax(
                                format!("unknown escape `\\{}` in string", c.escape_debug()),
                                at,
                            ));
                        }
                        None => break,
                    };
                    out.push(escaped);
                }
                c => out.push(c),
            }
        }
        Err(Fault::syntax("unterminated string", start))
    }

    /// `\u{1F600}`: one to six hex digits naming a Unicode scalar value.
    fn unicode_escape(&self, chars: &mut std::str::CharIndices<'_>, at: usize) -> Result<char> {
        let bad = || Fault::syntax("bad escape: write `\\u{...}` with 1 to 6 hex digits", at);
        if chars.next().map(|(_, c)| c) != Some('{') {
            return Err(bad());
        }
        let mut value: u32 = 0;
        let mut count = 0;
        loop {
            match chars.next().map(|(_, c)| c) {
                Some('}') if count > 0 => break,
                Some(c) if count < 6 => {
                    let digit = c.to_digit(16).ok_or_else(bad)?;
                    value = value * 16 + digit;
                    count += 1;
                }
                _ => return Err(bad()),
            }
        }
        char::from_u32(value).ok_or_else(|| {
            Fault::syntax(
                format!("`\\u{{{value:x}}}` is not a Unicode scalar value"),
                at,
            )
        })
    }
}
