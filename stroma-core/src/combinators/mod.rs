//! The combinators that are nodes of nodes: `parallel!` (its runtime half)
//! and `for_each` run branches; `loop_until` runs iterations.

/// `Node` and `Accepts` for `$wrapper<N>`, a named scope of kind `$kind`
/// (id: `$id(self)`) around the node in its field `inner`, one slot before it.
macro_rules! scope_node {
    ($wrapper:ident, $kind:expr, $id:expr) => {
        #[diagnostic::do_not_recommend]
        impl<N: $crate::node::Node> $crate::node::Node for $wrapper<N> {
            type Input = N::Input;
            type Output = N::Output;

            fn name(&self) -> &'static str {
                ($id)(self)
            }

            fn leaf_count(&self) -> usize {
                self.inner.leaf_count() + 1
            }

            fn input_json(input: &Self::Input) -> Option<serde_json::Value> {
                N::input_json(input)
            }

            const MAY_CHANGE_MODEL: bool = N::MAY_CHANGE_MODEL;
            const USES_CONTEXT: bool = N::USES_CONTEXT;
            const ASKS_PATHS: bool = N::ASKS_PATHS;
            const SLOTS: u32 = 1 + N::SLOTS;

            fn describe(&self, shape: &mut $crate::tree::shape::ShapeBuilder) {
                shape.scope(($id)(self), $kind, |inner| self.inner.describe(inner));
            }
        }

        impl<N: $crate::durable::Durable> $crate::durable::Durable for $wrapper<N> {}

        #[diagnostic::do_not_recommend]
        impl<T, N: $crate::node::Accepts<T>> $crate::node::Accepts<T> for $wrapper<N> {
            #[inline(always)]
            fn accept(value: T) -> Self::Input {
                N::accept(value)
            }
        }
    };
}
pub(crate) use scope_node;

/// Where a wrapper writes its diagram note (see `ShapeBuilder::noted`).
pub(crate) type Note<'a> = &'a mut dyn std::fmt::Write;

/// `Node`, `Accepts` and `Durable` for `$wrapper<N>`, a node around the
/// node in its field `node` that keeps that node's id, path and slots (a
/// modifier, a retry, a time limit); `$may_change_model` says whether the
/// model it leaves may differ (`N::MAY_CHANGE_MODEL`, or `false` for one
/// whose changes are discarded); `$note` writes what a diagram notes on it.
macro_rules! wrapper_node {
    ($wrapper:ident, $may_change_model:expr, $note:expr) => {
        impl<N: $crate::durable::Durable> $crate::durable::Durable for $wrapper<N> {}

        #[diagnostic::do_not_recommend]
        impl<N: $crate::node::Node> $crate::node::Node for $wrapper<N> {
            type Input = N::Input;
            type Output = N::Output;

            fn name(&self) -> &'static str {
                self.node.name()
            }

            fn leaf_count(&self) -> usize {
                self.node.leaf_count()
            }

            fn input_json(input: &Self::Input) -> Option<serde_json::Value> {
                N::input_json(input)
            }

            const MAY_CHANGE_MODEL: bool = $may_change_model;
            const USES_CONTEXT: bool = N::USES_CONTEXT;
            const ASKS_PATHS: bool = N::ASKS_PATHS;
            const SLOTS: u32 = N::SLOTS;
            const TRANSPARENT: bool = N::TRANSPARENT;

            // It keeps its node's id and path; diagrams show it as a note.
            fn describe(&self, shape: &mut $crate::tree::shape::ShapeBuilder) {
                shape.noted(|out| ($note)(self, out), |shape| self.node.describe(shape))
            }
        }

        #[diagnostic::do_not_recommend]
        impl<T, N: $crate::node::Accepts<T>> $crate::node::Accepts<T> for $wrapper<N> {
            #[inline(always)]
            fn accept(value: T) -> Self::Input {
                N::accept(value)
            }
        }
    };
}
pub(crate) use wrapper_node;

pub(crate) mod branches;
pub(crate) mod flow;
pub(crate) mod looping;
pub(crate) mod modifiers;
pub(crate) mod phase;
pub(crate) mod retry;
pub(crate) mod route;
pub(crate) mod timeout;
