//! Resource limits: what keeps a hostile template from exhausting the stack,
//! memory or output.

/// Bounds on what parsing and evaluating one template may use.
///
/// Every limit that is hit gives a
/// [`TemplateErrorKind::LimitExceeded`](crate::TemplateErrorKind::LimitExceeded)
/// error naming the [`Limit`]; nothing panics or grows without bound.
///
/// ```
/// use stroma_template::{Limit, Limits, Template, TemplateErrorKind};
///
/// let mut limits = Limits::default();
/// limits.max_depth = 2;
/// let err = Template::parse_with("$expr{[[[1]]]}", limits).unwrap_err();
/// assert!(matches!(
///     err.kind(),
///     TemplateErrorKind::LimitExceeded { limit: Limit::Depth, max: 2 }
/// ));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Limits {
    /// Longest template source accepted by [`Template::parse_with`](crate::Template::parse_with),
    /// in bytes. Default: [`Limits::DEFAULT_MAX_SOURCE_LEN`].
    pub max_source_len: usize,
    /// Deepest nesting of an expression: parentheses, lists, indices, function
    /// arguments, `not`, unary `-` and `if`/`else` chains each add a level.
    /// Default: [`Limits::DEFAULT_MAX_DEPTH`]; values above
    /// [`Limits::HARD_MAX_DEPTH`] count as that, so the stack stays bounded.
    ///
    /// Parsing and evaluating recurse once per level. Measured on x86-64,
    /// the deepest template at the default depth needs about 140 KiB of
    /// stack in an optimized build (600 KiB unoptimized); at the ceiling,
    /// about 270 KiB (1.2 MiB unoptimized), within the 2 MiB that Rust and
    /// tokio give a thread.
    pub max_depth: usize,
    /// Longest rendered text, and longest string an expression may build
    /// (`+`, `join`, `json`, `upper`, ...), in bytes.
    /// Default: [`Limits::DEFAULT_MAX_OUTPUT_LEN`].
    pub max_output_len: usize,
    /// Longest list an expression may build (list literals, `+` on lists,
    /// `keys`). Default: [`Limits::DEFAULT_MAX_LIST_LEN`].
    pub max_list_len: usize,
    /// Total size, in bytes (estimated: string lengths plus a few bytes per
    /// value), of all values one render or evaluation builds or copies. It is
    /// what bounds memory when a template copies one large value many times,
    /// as in `[big, big, big, ...]`. Default: [`Limits::DEFAULT_MAX_BUILD_LEN`].
    pub max_build_len: usize,
}

impl Limits {
    /// Default [`max_source_len`](Limits::max_source_len): 1 MiB.
    pub const DEFAULT_MAX_SOURCE_LEN: usize = 1 << 20;
    /// Default [`max_depth`](Limits::max_depth): 64.
    pub const DEFAULT_MAX_DEPTH: usize = 64;
    /// Ceiling on [`max_depth`](Limits::max_depth), whatever it is set to: 128.
    pub const HARD_MAX_DEPTH: usize = 128;
    /// Default [`max_output_len`](Limits::max_output_len): 16 MiB.
    pub const DEFAULT_MAX_OUTPUT_LEN: usize = 16 << 20;
    /// Default [`max_list_len`](Limits::max_list_len): 100,000 items.
    pub const DEFAULT_MAX_LIST_LEN: usize = 100_000;
    /// Default [`max_build_len`](Limits::max_build_len): 64 MiB.
    pub const DEFAULT_MAX_BUILD_LEN: usize = 64 << 20;

    /// The defaults, as a constant.
    pub const DEFAULT: Limits = Limits {
        max_source_len: Self::DEFAULT_MAX_SOURCE_LEN,
        max_depth: Self::DEFAULT_MAX_DEPTH,
        max_output_len: Self::DEFAULT_MAX_OUTPUT_LEN,
        max_list_len: Self::DEFAULT_MAX_LIST_LEN,
        max_build_len: Self::DEFAULT_MAX_BUILD_LEN,
    };

    /// The depth limit actually enforced.
    pub(crate) fn depth(&self) -> usize {
        self.max_depth.min(Self::HARD_MAX_DEPTH)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Which of the [`Limits`] was exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// [`Limits::max_source_len`].
    SourceLength,
    /// [`Limits::max_depth`].
    Depth,
    /// [`Limits::max_output_len`].
    OutputLength,
    /// [`Limits::max_list_len`].
    ListLength,
    /// [`Limits::max_build_len`].
    BuildSize,
}
