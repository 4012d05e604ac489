//! The built-in functions. There are no others: templates run no code but
//! these, and a call to anything else fails when the template is parsed.

/// Every function name, sorted, as the "unknown function" error lists them.
pub(crate) const NAMES: [&str; 8] = [
    "default", "join", "json", "keys", "len", "lower", "trim", "upper",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Func {
    Default,
    Join,
    Json,
    Keys,
    Len,
    Lower,
    Trim,
    Upper,
}

impl Func {
    pub fn lookup(name: &str) -> Option<Self> {
        Some(match name {
            "default" => Self::Default,
            "join" => Self::Join,
            "json" => Self::Json,
            "keys" => Self::Keys,
            "len" => Self::Len,
            "lower" => Self::Lower,
            "trim" => Self::Trim,
            "upper" => Self::Upper,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Join => "join",
            Self::Json => "json",
            Self::Keys => "keys",
            Self::Len => "len",
            Self::Lower => "lower",
            Self::Trim => "trim",
            Self::Upper => "upper",
        }
    }

    pub fn arity(self) -> usize {
        match self {
            Self::Default | Self::Join => 2,
            _ => 1,
        }
    }
}
