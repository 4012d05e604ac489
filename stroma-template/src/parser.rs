//! Template text into [`Segment`]s, and `$expr{}` tokens into [`Expr`]s.
//!
//! The expression parser is recursive descent. Every recursion goes through
//! [`ExprParser::enter`], which counts depth against the limit, and
//! left-associative chains (`a + b + c`, `a.b.c`, `a and b and c`) are built
//! flat by loops: so the depth of the tree, of the parser's stack and of the
//! evaluator's stack are all bounded by [`Limits::max_depth`].

use std::ops::Range;

use serde_json::Value;

use crate::ast::{Access, AccessKind, ArithOp, CmpOp, Expr, ExprKind, Segment};
use crate::error::{Fault, Result, TemplateErrorKind};
use crate::functions::Func;
use crate::lexer::{Lexer, Tok, Token};
use crate::limits::{Limit, Limits};
use crate::path;

/// A reference as found in the source: a variable name, or a whole `$hier{}` path.
#[derive(Clone, Debug)]
pub(crate) struct RefSpan {
    pub hier: bool,
    pub range: Range<usize>,
}

pub(crate) struct Parsed {
    pub segments: Vec<Segment>,
    pub refs: Vec<RefSpan>,
}

#[derive(Clone, Copy)]
enum Opener {
    Var,
    Hier,
    Expr,
}

/// The opener that `rest` (the text just past a `$`) starts with, and its length.
fn opener(rest: &str) -> Option<(Opener, usize)> {
    if rest.starts_with("var{") {
        Some((Opener::Var, 4))
    } else if rest.starts_with("hier{") {
        Some((Opener::Hier, 5))
    } else if rest.starts_with("expr{") {
        Some((Opener::Expr, 5))
    } else {
        None
    }
}

pub(crate) fn parse(src: &str, limits: &Limits) -> Result<Parsed> {
    if src.len() > limits.max_source_len {
        return Err(Fault::limit(
            Limit::SourceLength,
            limits.max_source_len,
            limits.max_source_len,
        ));
    }
    let mut segments = Vec::new();
    let mut refs = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    let push_text = |segments: &mut Vec<Segment>, range: Range<usize>| {
        if !range.is_empty() {
            segments.push(Segment::Text(range));
        }
    };
    while let Some(found) = src.get(i..).and_then(|s| s.find('$')) {
        let dollar = i + found;
        let rest = &src[dollar + 1..];
        if let Some((kind, len)) = opener(rest) {
            push_text(&mut segments, text_start..dollar);
            let content = dollar + 1 + len;
            let (expr, end) = match kind {
                Opener::Var => {
                    let (name, end) = path::parse_var(src, dollar, content)?;
                    refs.push(RefSpan {
                        hier: false,
                        range: name.clone(),
                    });
                    let kind = ExprKind::Var(name.clone());
                    (
                        Expr {
                            kind,
                            pos: name.start,
                        },
                        end,
                    )
                }
                Opener::Hier => {
                    let (path, end) = path::parse_hier(src, dollar, content, limits.depth())?;
                    refs.push(RefSpan {
                        hier: true,
                        range: path.text.clone(),
                    });
                    let pos = path.text.start;
                    (
                        Expr {
                            kind: ExprKind::Hier(path),
                            pos,
                        },
                        end,
                    )
                }
                Opener::Expr => parse_expr(src, dollar, content, limits, &mut refs)?,
            };
            segments.push(Segment::Value(expr));
            i = end;
            text_start = end;
        } else if rest.starts_with('$') && opener(&rest[1..]).is_some() {
            // `$$var{`: the text keeps one `$`, and the opener is plain text.
            push_text(&mut segments, text_start..dollar + 1);
            i = dollar + 2;
            text_start = i;
        } else {
            i = dollar + 1;
        }
    }
    push_text(&mut segments, text_start..src.len());
    Ok(Parsed { segments, refs })
}

/// Parses the expression of the `$expr{` at `open`, whose insides start at
/// `content`. Returns it and the offset past its `}`.
fn parse_expr(
    src: &str,
    open: usize,
    content: usize,
    limits: &Limits,
    refs: &mut Vec<RefSpan>,
) -> Result<(Expr, usize)> {
    let mut p = ExprParser {
        src,
        lex: Lexer::new(src, open, content, limits.depth()),
        peeked: None,
        depth: 0,
        max_depth: limits.depth(),
        refs,
    };
    if matches!(p.peek()?.tok, Tok::Close) {
        return Err(Fault::syntax("empty `$expr{}`: write an expression", open));
    }
    let expr = p.conditional()?;
    let close = p.bump()?;
    if !matches!(close.tok, Tok::Close) {
        return Err(Fault::syntax(
            format!("expected an operator or `}}`, found {}", p.describe(&close)),
            close.start,
        ));
    }
    Ok((expr, close.end))
}

struct ExprParser<'s, 'r> {
    src: &'s str,
    lex: Lexer<'s>,
    peeked: Option<Token>,
    depth: usize,
    max_depth: usize,
    refs: &'r mut Vec<RefSpan>,
}

impl<'s> ExprParser<'s, '_> {
    fn peek(&mut self) -> Result<&Token> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lex.next_token()?);
        }
        match &self.peeked {
            Some(token) => Ok(token),
            None => Err(Fault::syntax("unexpected end of expression", 0)),
        }
    }

    fn bump(&mut self) -> Result<Token> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.lex.next_token(),
        }
    }

    fn text(&self, token: &Token) -> &'s str {
        self.src.get(token.start..token.end).unwrap_or("")
    }

    /// A token as error messages show it.
    fn describe(&self, token: &Token) -> String {
        let text = self.text(token);
        match text.char_indices().nth(40) {
            Some((cut, _)) => format!("`{}…`", &text[..cut]),
            None => format!("`{text}`"),
        }
    }

    fn at_keyword(&mut self, keyword: &str) -> Result<bool> {
        self.peek()?;
        Ok(match &self.peeked {
            Some(token) if matches!(token.tok, Tok::Ident) => self.text(token) == keyword,
            _ => false,
        })
    }

    fn expect(&mut self, what: &str, ok: fn(&Tok) -> bool) -> Result<Token> {
        let token = self.bump()?;
        if ok(&token.tok) {
            Ok(token)
        } else {
            Err(Fault::syntax(
                format!("expected {what}, found {}", self.describe(&token)),
                token.start,
            ))
        }
    }

    /// One level deeper; fails past the depth limit, before the stack can grow further.
    fn enter(&mut self, pos: usize) -> Result<()> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(Fault::limit(Limit::Depth, self.max_depth, pos));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// `or [ "if" or "else" conditional ]`
    fn conditional(&mut self) -> Result<Expr> {
        let pos = self.peek()?.start;
        self.enter(pos)?;
        let then = self.or()?;
        let expr = if self.at_keyword("if")? {
            self.bump()?;
            let cond = self.or()?;
            if !self.at_keyword("else")? {
                let token = self.bump()?;
                return Err(Fault::syntax(
                    format!(
                        "expected `else` after the condition, found {}",
                        self.describe(&token)
                    ),
                    token.start,
                ));
            }
            self.bump()?;
            let otherwise = self.conditional()?;
            Expr {
                pos: then.pos,
                kind: ExprKind::Cond {
                    then: Box::new(then),
                    cond: Box::new(cond),
                    otherwise: Box::new(otherwise),
                },
            }
        } else {
            then
        };
        self.leave();
        Ok(expr)
    }

    /// `and { "or" and }`
    fn or(&mut self) -> Result<Expr> {
        let first = self.and()?;
        if !self.at_keyword("or")? {
            return Ok(first);
        }
        let pos = first.pos;
        let mut items = vec![first];
        while self.at_keyword("or")? {
            self.bump()?;
            items.push(self.and()?);
        }
        Ok(Expr {
            kind: ExprKind::Or(items),
            pos,
        })
    }

    /// `not { "and" not }`
    fn and(&mut self) -> Result<Expr> {
        let first = self.not()?;
        if !self.at_keyword("and")? {
            return Ok(first);
        }
        let pos = first.pos;
        let mut items = vec![first];
        while self.at_keyword("and")? {
            self.bump()?;
            items.push(self.not()?);
        }
        Ok(Expr {
            kind: ExprKind::And(items),
            pos,
        })
    }

    /// `"not" not | comparison`
    fn not(&mut self) -> Result<Expr> {
        if !self.at_keyword("not")? {
            return self.comparison();
        }
        let token = self.bump()?;
        self.enter(token.start)?;
        let inner = self.not()?;
        self.leave();
        Ok(Expr {
            kind: ExprKind::Not(Box::new(inner)),
            pos: token.start,
        })
    }

    /// `sum [ cmp sum ]`: comparisons do not chain.
    fn comparison(&mut self) -> Result<Expr> {
        let lhs = self.sum()?;
        let Some(op) = cmp_op(&self.peek()?.tok) else {
            return Ok(lhs);
        };
        let token = self.bump()?;
        let rhs = self.sum()?;
        if let Some(next) = cmp_op(&self.peek()?.tok) {
            let start = self.peek()?.start;
            return Err(Fault::syntax(
                format!(
                    "comparisons do not chain: `{}` after `{}`; combine them with `and`",
                    next.symbol(),
                    op.symbol()
                ),
                start,
            ));
        }
        Ok(Expr {
            kind: ExprKind::Compare(Box::new(lhs), op, Box::new(rhs)),
            pos: token.start,
        })
    }

    /// `product { ("+" | "-") product }`
    fn sum(&mut self) -> Result<Expr> {
        self.chain(Self::product, |tok| match tok {
            Tok::Plus => Some(ArithOp::Add),
            Tok::Minus => Some(ArithOp::Sub),
            _ => None,
        })
    }

    /// `unary { ("*" | "/" | "%") unary }`
    fn product(&mut self) -> Result<Expr> {
        self.chain(Self::unary, |tok| match tok {
            Tok::Star => Some(ArithOp::Mul),
            Tok::Slash => Some(ArithOp::Div),
            Tok::Percent => Some(ArithOp::Rem),
            _ => None,
        })
    }

    fn chain(
        &mut self,
        operand: fn(&mut Self) -> Result<Expr>,
        op_of: fn(&Tok) -> Option<ArithOp>,
    ) -> Result<Expr> {
        let first = operand(self)?;
        let mut rest = Vec::new();
        while let Some(op) = op_of(&self.peek()?.tok) {
            let token = self.bump()?;
            rest.push((op, token.start, operand(self)?));
        }
        if rest.is_empty() {
            return Ok(first);
        }
        let pos = first.pos;
        Ok(Expr {
            kind: ExprKind::Arith(Box::new(first), rest),
            pos,
        })
    }

    /// `"-" unary | postfix`; a negated number literal is folded into one literal.
    fn unary(&mut self) -> Result<Expr> {
        if !matches!(self.peek()?.tok, Tok::Minus) {
            return self.postfix();
        }
        let token = self.bump()?;
        self.enter(token.start)?;
        let inner = self.unary()?;
        self.leave();
        let kind = match inner.kind {
            ExprKind::Literal(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => match i.checked_neg() {
                    Some(neg) => ExprKind::Literal(Value::from(neg)),
                    None => return Err(Fault::new(TemplateErrorKind::Overflow, token.start)),
                },
                (None, Some(f)) => ExprKind::Literal(Value::from(-f)),
                (None, None) => ExprKind::Literal(Value::Number(n)),
            },
            kind => ExprKind::Neg(Box::new(Expr {
                kind,
                pos: inner.pos,
            })),
        };
        Ok(Expr {
            kind,
            pos: token.start,
        })
    }

    /// `primary { "." name | "[" conditional "]" }`
    fn postfix(&mut self) -> Result<Expr> {
        let base = self.primary()?;
        let mut steps = Vec::new();
        loop {
            match self.peek()?.tok {
                Tok::Dot => {
                    self.bump()?;
                    let name = self.bump()?;
                    if !matches!(name.tok, Tok::Ident) {
                        return Err(Fault::syntax(
                            format!(
                                "expected a field name after `.`, found {}; for other keys write `[\"key\"]`",
                                self.describe(&name)
                            ),
                            name.start,
                        ));
                    }
                    steps.push(Access {
                        pos: name.start,
                        kind: AccessKind::Field(name.start..name.end),
                    });
                }
                Tok::LBracket => {
                    let open = self.bump()?;
                    let index = self.conditional()?;
                    self.expect("`]`", |t| matches!(t, Tok::RBracket))?;
                    steps.push(Access {
                        pos: open.start,
                        kind: AccessKind::Index(index),
                    });
                }
                _ => break,
            }
        }
        if steps.is_empty() {
            return Ok(base);
        }
        let pos = base.pos;
        Ok(Expr {
            kind: ExprKind::Access(Box::new(base), steps),
            pos,
        })
    }

    fn primary(&mut self) -> Result<Expr> {
        let token = self.bump()?;
        let pos = token.start;
        let kind = match token.tok {
            Tok::Int(n) => ExprKind::Literal(Value::from(n)),
            Tok::Float(f) => ExprKind::Literal(Value::from(f)),
            Tok::Str(s) => ExprKind::Literal(Value::String(s)),
            Tok::Var(name) => {
                self.refs.push(RefSpan {
                    hier: false,
                    range: name.clone(),
                });
                return Ok(Expr {
                    pos: name.start,
                    kind: ExprKind::Var(name),
                });
            }
            Tok::Hier(path) => {
                self.refs.push(RefSpan {
                    hier: true,
                    range: path.text.clone(),
                });
                ExprKind::Hier(path)
            }
            Tok::LParen => {
                let inner = self.conditional()?;
                self.expect("`)`", |t| matches!(t, Tok::RParen))?;
                return Ok(inner);
            }
            Tok::LBracket => ExprKind::List(self.items(Tok::RBracket, "`]`")?),
            Tok::Ident => match self.text(&token) {
                "true" => ExprKind::Literal(Value::Bool(true)),
                "false" => ExprKind::Literal(Value::Bool(false)),
                "null" => ExprKind::Literal(Value::Null),
                "and" | "or" | "not" | "if" | "else" => {
                    return Err(self.expected_expression(&token));
                }
                _ if matches!(self.peek()?.tok, Tok::LParen) => return self.call(token),
                _ => {
                    let range = token.start..token.end;
                    self.refs.push(RefSpan {
                        hier: false,
                        range: range.clone(),
                    });
                    ExprKind::Var(range)
                }
            },
            _ => return Err(self.expected_expression(&token)),
        };
        Ok(Expr { kind, pos })
    }

    fn expected_expression(&self, token: &Token) -> Fault {
        Fault::syntax(
            format!("expected an expression, found {}", self.describe(token)),
            token.start,
        )
    }

    /// Comma-separated expressions up to `close` (the opener is consumed);
    /// a trailing comma is allowed.
    fn items(&mut self, close: Tok, close_text: &str) -> Result<Vec<Expr>> {
        let is_close = |t: &Tok| std::mem::discriminant(t) == std::mem::discriminant(&close);
        let mut items = Vec::new();
        loop {
            if is_close(&self.peek()?.tok) {
                self.bump()?;
                return Ok(items);
            }
            items.push(self.conditional()?);
            let token = self.bump()?;
            match token.tok {
                Tok::Comma => {}
                ref t if is_close(t) => return Ok(items),
                _ => {
                    return Err(Fault::syntax(
                        format!(
                            "expected `,` or {close_text}, found {}",
                            self.describe(&token)
                        ),
                        token.start,
                    ));
                }
            }
        }
    }

    /// `name ( args )`: the function must exist and take this many arguments.
    fn call(&mut self, name: Token) -> Result<Expr> {
        let text = self.text(&name);
        let Some(func) = Func::lookup(text) else {
            return Err(Fault::new(
                TemplateErrorKind::UnknownFunction {
                    name: text.to_owned(),
                },
                name.start,
            ));
        };
        self.bump()?;
        let args = self.items(Tok::RParen, "`)`")?;
        if args.len() != func.arity() {
            return Err(Fault::new(
                TemplateErrorKind::WrongArgumentCount {
                    function: func.name(),
                    expected: func.arity(),
                    found: args.len(),
                },
                name.start,
            ));
        }
        Ok(Expr {
            kind: ExprKind::Call(func, args),
            pos: name.start,
        })
    }
}

fn cmp_op(tok: &Tok) -> Option<CmpOp> {
    Some(match tok {
        Tok::Eq => CmpOp::Eq,
        Tok::Ne => CmpOp::Ne,
        Tok::Lt => CmpOp::Lt,
        Tok::Le => CmpOp::Le,
        Tok::Gt => CmpOp::Gt,
        Tok::Ge => CmpOp::Ge,
        _ => return None,
    })
}
