//! [`StoreError`]: what a run-store operation failed at, on which run, and why.

use std::error::Error as StdError;
use std::fmt;

use crate::error::BoxError;

/// What kind of failure a [`StoreError`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store itself failed: I/O, SQL, a lock, a task that did not finish.
    /// Retrying may help.
    Storage,
    /// The run is not in the store.
    UnknownRun,
    /// [`create_run`](crate::RunStore::create_run) was given an id that is
    /// already taken.
    RunExists,
    /// Another holder has a live lease on the run.
    LeaseHeld {
        /// Who holds the lease.
        holder: String,
    },
    /// The lease given is not the run's current one (it expired, was
    /// released, or another holder has taken the run since).
    StaleLease,
    /// The checkpoint's `seq` is not above the run's latest one.
    SeqConflict {
        /// The run's latest `seq`.
        latest: u64,
    },
    /// A stored value cannot be decoded; `field` names the column (such as
    /// `"state"`). Retrying does not help: the stored data needs repair.
    Corrupt {
        /// The field that cannot be decoded.
        field: &'static str,
    },
    /// The store was written by a newer or unknown schema version.
    SchemaVersion {
        /// The version found in the store.
        found: i64,
    },
}

/// A [`RunStore`](crate::RunStore) operation failed.
///
/// It names the operation ([`operation`](Self::operation)), the run
/// ([`run_id`](Self::run_id); empty for operations on the whole store such
/// as `open` or `list`), what kind of failure it is ([`kind`](Self::kind))
/// and the cause.
///
/// ```
/// use stroma_core::{StoreError, StoreErrorKind};
///
/// let err = StoreError::new("save", "run-7", "the disk is full");
/// assert_eq!(err.run_id(), "run-7");
/// assert_eq!(err.kind(), &StoreErrorKind::Storage);
/// assert_eq!(err.to_string(), "run \"run-7\": save failed: the disk is full");
/// ```
#[derive(Debug)]
pub struct StoreError {
    operation: &'static str,
    run_id: String,
    kind: StoreErrorKind,
    cause: BoxError,
}

impl StoreError {
    /// A failure of the store (kind [`StoreErrorKind::Storage`]) while running
    /// `operation` (a method name such as `"save"`) on `run_id`.
    pub fn new(
        operation: &'static str,
        run_id: impl Into<String>,
        cause: impl Into<BoxError>,
    ) -> Self {
        StoreError {
            operation,
            run_id: run_id.into(),
            kind: StoreErrorKind::Storage,
            cause: cause.into(),
        }
    }

    /// An error of kind `kind`.
    pub fn with_kind(
        operation: &'static str,
        run_id: impl Into<String>,
        kind: StoreErrorKind,
        cause: impl Into<BoxError>,
    ) -> Self {
        StoreError {
            kind,
            ..StoreError::new(operation, run_id, cause)
        }
    }

    /// The run is not in the store.
    pub fn unknown_run(operation: &'static str, run_id: impl Into<String>) -> Self {
        Self::with_kind(
            operation,
            run_id,
            StoreErrorKind::UnknownRun,
            "no such run; create it with create_run first",
        )
    }

    /// `holder` has a live lease on the run.
    pub fn lease_held(
        operation: &'static str,
        run_id: impl Into<String>,
        holder: impl Into<String>,
    ) -> Self {
        let holder = holder.into();
        let cause = format!("the run is leased by {holder:?} and that lease has not expired");
        Self::with_kind(
            operation,
            run_id,
            StoreErrorKind::LeaseHeld { holder },
            cause,
        )
    }

    /// The lease given is not the run's current one.
    pub fn stale_lease(operation: &'static str, run_id: impl Into<String>, holder: &str) -> Self {
        Self::with_kind(
            operation,
            run_id,
            StoreErrorKind::StaleLease,
            format!(
                "the lease held by {holder:?} is not the run's current lease \
                 (it expired, was released, or another holder took the run)"
            ),
        )
    }

    /// The stored `field` cannot be decoded; `cause` says why.
    pub fn corrupt(
        operation: &'static str,
        run_id: impl Into<String>,
        field: &'static str,
        cause: impl fmt::Display,
    ) -> Self {
        Self::with_kind(
            operation,
            run_id,
            StoreErrorKind::Corrupt { field },
            format!("stored field `{field}` cannot be decoded: {cause}"),
        )
    }

    /// The operation that failed: `"create_run"`, `"save"`, `"latest"`,
    /// `"list"`, `"acquire"`, `"release"`, `"delete"`, `"prune"` or `"open"`.
    pub fn operation(&self) -> &str {
        self.operation
    }

    /// The run the operation was on; empty for whole-store operations.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> &StoreErrorKind {
        &self.kind
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.run_id.is_empty() {
            write!(f, "run store: {} failed: ", self.operation)?;
        } else {
            write!(f, "run {:?}: {} failed: ", self.run_id, self.operation)?;
        }
        if let StoreErrorKind::SchemaVersion { found } = self.kind {
            write!(f, "unknown schema version {found}: ")?;
        }
        write!(f, "{}", self.cause)
    }
}

impl StdError for StoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.cause)
    }
}
