//! The run tree: every node's identity and path ([`ScopePath`]), the
//! pipeline's static shape, what a run leaves while it runs, and the
//! [`Scope`] tree and kept outputs made of it.

pub(crate) mod diagram;
pub(crate) mod kept;
pub(crate) mod path;
pub(crate) mod record;
pub(crate) mod results;
pub(crate) mod scope;
pub(crate) mod shape;
pub(crate) mod trace;

pub use diagram::Diagram;
pub use path::{PathError, ScopePath, Segment};
pub use scope::{ResultError, Scope, ScopeKind};
