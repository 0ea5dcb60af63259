//! `hostile_trap`: traps. By default it executes `unreachable`; with the query `mode=panic` it
//! panics instead (the SDK logs the panic message, then the instance aborts).

use portico_plugin::{Request, Response};

fn handle(request: Request) -> Response {
    if request.query("mode") == Some("panic") {
        panic!("hostile_trap was asked to panic");
    }
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}

portico_plugin::integration!(handle);
