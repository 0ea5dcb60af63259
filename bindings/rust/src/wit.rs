//! The generated bindings of `wit/` (a link to bindings/wit), one module per world. Nothing here
//! is public API: the crate root wraps it in plain Rust types.

/// The `integration` world: its imports (kv, log, config) and the `handle` export.
pub mod integration {
    wit_bindgen::generate!({
        path: "wit",
        world: "portico:plugin/integration",
        // The export macro is invoked from the plugin's crate (through `integration!`), which
        // also carries the world's custom section; this crate only carries the imports.
        pub_export_macro: true,
        export_macro_name: "__export_integration",
    });
}

/// The `authorizer` world; its imports and types are the integration world's, shared.
pub mod authorizer {
    wit_bindgen::generate!({
        path: "wit",
        world: "portico:plugin/authorizer",
        pub_export_macro: true,
        export_macro_name: "__export_authorizer",
        with: {
            "portico:plugin/types@0.1.1": crate::wit::integration::portico::plugin::types,
            "portico:plugin/kv@0.1.1": crate::wit::integration::portico::plugin::kv,
            "portico:plugin/log@0.1.1": crate::wit::integration::portico::plugin::log,
            "portico:plugin/config@0.1.1": crate::wit::integration::portico::plugin::config,
        },
    });
}

/// The `lazy-integration` world; its imports and types are the integration world's, shared.
pub mod lazy_integration {
    wit_bindgen::generate!({
        path: "wit",
        world: "portico:plugin/lazy-integration",
        pub_export_macro: true,
        export_macro_name: "__export_lazy_integration",
        with: {
            "portico:plugin/types@0.1.1": crate::wit::integration::portico::plugin::types,
            "portico:plugin/kv@0.1.1": crate::wit::integration::portico::plugin::kv,
            "portico:plugin/log@0.1.1": crate::wit::integration::portico::plugin::log,
            "portico:plugin/config@0.1.1": crate::wit::integration::portico::plugin::config,
        },
    });
}
