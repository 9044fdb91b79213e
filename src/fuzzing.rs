//! The few internals the fuzz targets (`fuzz/`, run by `scripts/fuzz`) call besides the
//! public API: `${VAR}` substitution on one string and the multipart `model` field reader
//! and rewriter. Hidden from the docs and not a stable API; it exists so fuzzing needs no
//! internals made public.

pub use crate::config::interpolate::{substitute, substitute_tree, Substitution};
pub use crate::pipeline::multipart::{
    model as multipart_model, replace_model as multipart_replace_model,
};
