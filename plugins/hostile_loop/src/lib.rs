//! `hostile_loop`: spins forever, so the host's epoch deadline has to stop it.

use portico_plugin::{Request, Response};

fn handle(request: Request) -> Response {
    // black_box keeps the optimizer from proving anything about the loop.
    let mut n = request.body.len() as u64;
    loop {
        n = std::hint::black_box(n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        if std::hint::black_box(false) {
            break;
        }
    }
    Response::text(200, format!("unreachable {n}"))
}

portico_plugin::integration!(handle);
