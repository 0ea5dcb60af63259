//! `hostile_trap`: traps. By default it executes `unreachable`; with the query `mode=panic` it
//! panics instead (the SDK logs the panic message, then the instance aborts); with `mode=oob`
//! it loads from an address past the end of its linear memory (an out-of-bounds trap, which
//! the host catches by an explicit bounds check or by a guard page, depending on its engine).

use portico_plugin::{Request, Response};

fn handle(request: Request) -> Response {
    if request.query("mode") == Some("panic") {
        panic!("hostile_trap was asked to panic");
    }
    #[cfg(target_arch = "wasm32")]
    if request.query("mode") == Some("oob") {
        // The last bytes of the 4 GiB address space: never inside the memory.
        let past_the_end = usize::MAX - 15;
        // SAFETY: none needed on wasm32, where the load cannot touch anything but the
        // instance's own memory: it is meant to trap (the host turns that into a failure).
        let byte = unsafe { core::ptr::read_volatile(past_the_end as *const u8) };
        return Response::text(200, format!("read {byte}"));
    }
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}

portico_plugin::integration!(handle);
