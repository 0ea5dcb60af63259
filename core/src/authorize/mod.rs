//! The authorize phase: JWT authorizers, custom (plugin) authorizers with their IAM policies and
//! result cache, and API keys live here, between route and integrate.

pub(crate) mod policy;
