//! `hostile_memory`: allocates 1 MiB blocks forever, writing to every page of each, so the
//! host's memory cap has to stop it (the failed `memory.grow` aborts the instance).

use portico_plugin::{Request, Response};

const BLOCK: usize = 1 << 20;
const PAGE: usize = 64 << 10;

fn handle(_request: Request) -> Response {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = vec![0u8; BLOCK];
        for offset in (0..BLOCK).step_by(PAGE) {
            block[offset] = blocks.len() as u8 | 1;
        }
        blocks.push(std::hint::black_box(block));
        if std::hint::black_box(blocks.is_empty()) {
            break;
        }
    }
    Response::text(200, format!("unreachable {}", blocks.len()))
}

portico_plugin::integration!(handle);
