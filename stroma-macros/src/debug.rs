//! `STROMA_MACROS_DEBUG=1` prints every expansion, for whoever debugs a macro.

use proc_macro2::TokenStream;

pub(crate) fn print(macro_name: &str, expanded: &TokenStream) {
    if std::env::var_os("STROMA_MACROS_DEBUG").is_some_and(|v| v != "0") {
        eprintln!("--- {macro_name} expansion ---\n{expanded}\n");
    }
}
