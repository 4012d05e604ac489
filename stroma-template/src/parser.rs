//! Template text into [`Segment`]s, and `$expr{}` tokens into [`Expr`]s.
//!
//! The expression parser is recursive descent, with precedence climbing for
//! the binary operators. Every nesting (parentheses, lists, indices,
//! arguments, `not`, unary `-`, `else` branches) goes through
//! [`ExprParser::enter`], which counts depth against the limit, and
//! left-associative chains (`a + b + c`, `a.b.c`, `a and b and c`) are built
//! flat by loops: so the depth of the tree, of the parser's stack and of the
//! evaluator's stack are all bounded by [`Limits::max_depth`]. The recursive
//! functions keep their frames small (errors are built out of line), since
//! the stack a level takes is what the depth limit multiplies.

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
                            kind: ExprKind::Hier(Box::new(path)),
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
        return Err(p.unexpected("an operator or `}`", &close, ""));
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
            Err(self.unexpected(what, &token, ""))
        }
    }

    /// "expected `what`, found `token`". Errors are built out of line (here
    /// and below) to keep the frames of the recursive functions small.
    #[cold]
    #[inline(never)]
    fn unexpected(&self, what: &str, token: &Token, hint: &str) -> Fault {
        Fault::syntax(
            format!("expected {what}, found {}{hint}", self.describe(token)),
            token.start,
        )
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

    /// `or [ "if" or "else" conditional ]`: one level of depth.
    fn conditional(&mut self) -> Result<Expr> {
        let pos = self.peek()?.start;
        self.enter(pos)?;
        let then = self.binary(OR)?;
        let expr = if self.at_keyword("if")? {
            self.bump()?;
            let cond = self.binary(OR)?;
            if !self.at_keyword("else")? {
                let token = self.bump()?;
                return Err(self.unexpected("`else` after the condition", &token, ""));
            }
            self.bump()?;
            let otherwise = self.conditional()?;
            Expr {
                pos: then.pos,
                kind: ExprKind::Cond(Box::new([then, cond, otherwise])),
            }
        } else {
            then
        };
        self.leave();
        Ok(expr)
    }

    /// The binary operator next, if any, and how tightly it binds.
    fn binop(&mut self) -> Result<Option<(BinOp, u8)>> {
        let src = self.src;
        let token = self.peek()?;
        Ok(Some(match &token.tok {
            Tok::Ident => match src.get(token.start..token.end).unwrap_or("") {
                "or" => (BinOp::Or, OR),
                "and" => (BinOp::And, AND),
                _ => return Ok(None),
            },
            Tok::Plus => (BinOp::Arith(ArithOp::Add), SUM),
            Tok::Minus => (BinOp::Arith(ArithOp::Sub), SUM),
            Tok::Star => (BinOp::Arith(ArithOp::Mul), PRODUCT),
            Tok::Slash => (BinOp::Arith(ArithOp::Div), PRODUCT),
            Tok::Percent => (BinOp::Arith(ArithOp::Rem), PRODUCT),
            tok => match cmp_op(tok) {
                Some(op) => (BinOp::Cmp(op), CMP),
                None => return Ok(None),
            },
        }))
    }

    /// Binary operators that bind at least as tightly as `min`, by
    /// precedence climbing: the recursion here is at most one call per
    /// precedence level, whatever the input. A run of operators of one level
    /// builds one flat node (`a + b - c` is one `Arith`), which changes
    /// nothing for these left-associative operators, even across parentheses.
    fn binary(&mut self, min: u8) -> Result<Expr> {
        let mut lhs = self.prefix(min)?;
        while let Some((op, prec)) = self.binop()? {
            if prec < min {
                break;
            }
            let token = self.bump()?;
            let rhs = self.binary(prec + 1)?;
            lhs = self.combine(op, prec, token.start, lhs, rhs)?;
        }
        Ok(lhs)
    }

    /// `lhs op rhs`, appended to `lhs` when it is a run of the same level.
    fn combine(
        &mut self,
        op: BinOp,
        prec: u8,
        op_pos: usize,
        lhs: Expr,
        rhs: Expr,
    ) -> Result<Expr> {
        let pos = lhs.pos;
        let kind = match (op, lhs.kind) {
            (BinOp::Or, ExprKind::Or(mut items)) | (BinOp::And, ExprKind::And(mut items)) => {
                items.push(rhs);
                logic(op, items)
            }
            (BinOp::Or | BinOp::And, kind) => logic(op, vec![Expr { kind, pos }, rhs]),
            (BinOp::Arith(op), ExprKind::Arith(first, mut rest))
                if rest.first().is_some_and(|(o, ..)| level(*o) == prec) =>
            {
                rest.push((op, op_pos, rhs));
                ExprKind::Arith(first, rest)
            }
            (BinOp::Arith(op), kind) => {
                ExprKind::Arith(Box::new(Expr { kind, pos }), vec![(op, op_pos, rhs)])
            }
            (BinOp::Cmp(op), kind) => {
                if let Some((BinOp::Cmp(next), _)) = self.binop()? {
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
                return Ok(Expr {
                    kind: ExprKind::Compare(Box::new([Expr { kind, pos }, rhs]), op),
                    pos: op_pos,
                });
            }
        };
        Ok(Expr { kind, pos })
    }

    /// `"not" operand | "-" operand | postfix`. `not` binds looser than
    /// comparisons (`not a == b` is `not (a == b)`), so it may only start an
    /// operand where nothing tighter than `and` is pending.
    fn prefix(&mut self, min: u8) -> Result<Expr> {
        if self.at_keyword("not")? {
            let token = self.bump()?;
            if min > NOT {
                return Err(Fault::syntax(
                    "`not` needs parentheses here: write `(not ...)`",
                    token.start,
                ));
            }
            self.enter(token.start)?;
            let inner = self.binary(NOT)?;
            self.leave();
            return Ok(Expr {
                kind: ExprKind::Not(Box::new(inner)),
                pos: token.start,
            });
        }
        if !matches!(self.peek()?.tok, Tok::Minus) {
            return self.postfix();
        }
        let token = self.bump()?;
        self.enter(token.start)?;
        let inner = self.prefix(UNARY)?;
        self.leave();
        negate(inner, token.start)
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
                        return Err(self.unexpected(
                            "a field name after `.`",
                            &name,
                            "; for other keys write `[\"key\"]`",
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

    #[cold]
    fn expected_expression(&self, token: &Token) -> Fault {
        self.unexpected("an expression", token, "")
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
                _ => return Err(self.unexpected(&format!("`,` or {close_text}"), &token, "")),
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

/// How tightly each binary operator binds (and `not` and unary `-`, as prefixes).
const OR: u8 = 1;
const AND: u8 = 2;
const NOT: u8 = 3;
const CMP: u8 = 4;
const SUM: u8 = 5;
const PRODUCT: u8 = 6;
const UNARY: u8 = 7;

#[derive(Clone, Copy, PartialEq, Eq)]
enum BinOp {
    Or,
    And,
    Cmp(CmpOp),
    Arith(ArithOp),
}

fn logic(op: BinOp, items: Vec<Expr>) -> ExprKind {
    if op == BinOp::Or {
        ExprKind::Or(items)
    } else {
        ExprKind::And(items)
    }
}

/// `-inner`; a negated number literal is folded into one literal.
fn negate(inner: Expr, pos: usize) -> Result<Expr> {
    let kind = match inner.kind {
        ExprKind::Literal(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => match i.checked_neg() {
                Some(neg) => ExprKind::Literal(Value::from(neg)),
                None => return Err(Fault::new(TemplateErrorKind::Overflow, pos)),
            },
            (None, Some(f)) => ExprKind::Literal(Value::from(-f)),
            (None, None) => ExprKind::Literal(Value::Number(n)),
        },
        kind => ExprKind::Neg(Box::new(Expr {
            kind,
            pos: inner.pos,
        })),
    };
    Ok(Expr { kind, pos })
}

fn level(op: ArithOp) -> u8 {
    match op {
        ArithOp::Add | ArithOp::Sub => SUM,
        ArithOp::Mul | ArithOp::Div | ArithOp::Rem => PRODUCT,
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
