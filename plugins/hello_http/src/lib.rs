//! `hello_http`: a standard `wasi:http/proxy` component (what `wasmtime serve` and Spin run),
//! written against the `wasi` crate. Answers 200 text/plain
//! `hello from wasi:http <METHOD> <path-with-query>` and echoes the request header `x-echo`.
//! For the host's tests, a few paths misbehave: `/misbehave/trap` traps, `/misbehave/loop`
//! never returns, `/misbehave/none` returns without a response, `/misbehave/error` answers
//! with an error code instead of a response, and `/misbehave/stream` sends its head, then its
//! body in three writes.

use wasi::http::types::{
    ErrorCode, Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct HelloHttp;

fn method_name(method: &Method) -> &str {
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Patch => "PATCH",
        Method::Other(other) => other,
    }
}

impl wasi::exports::http::incoming_handler::Guest for HelloHttp {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let method = request.method();
        let path = request.path_with_query().unwrap_or_else(|| "/".to_owned());
        let Some(response_out) = misbehave(&path, response_out) else {
            return;
        };
        let text = format!("hello from wasi:http {} {path}", method_name(&method));

        let mut headers = vec![
            (
                "content-type".to_owned(),
                b"text/plain; charset=utf-8".to_vec(),
            ),
            (
                "content-length".to_owned(),
                text.len().to_string().into_bytes(),
            ),
        ];
        for value in request.headers().get("x-echo") {
            headers.push(("x-echo".to_owned(), value));
        }
        let headers = match Fields::from_list(&headers) {
            Ok(headers) => headers,
            Err(_) => Fields::new(),
        };

        let response = OutgoingResponse::new(headers);
        let _ = response.set_status_code(200);
        let Ok(body) = response.body() else { return };
        ResponseOutparam::set(response_out, Ok(response));
        let Ok(out) = body.write() else { return };
        // A client gone away is not this component's problem: nothing to report it to.
        // (blocking_write_and_flush takes at most 4096 bytes; the text is far shorter.)
        let _ = out.blocking_write_and_flush(text.as_bytes());
        drop(out);
        let _ = OutgoingBody::finish(body, None);
    }
}

/// The paths under `/misbehave/` (see the top of this file): handled here, or the outparam
/// handed back for the usual answer (any other path, `/misbehave/<other>` included).
fn misbehave(path: &str, response_out: ResponseOutparam) -> Option<ResponseOutparam> {
    match path.strip_prefix("/misbehave/") {
        Some("trap") => panic!("asked to trap"),
        Some("loop") => loop {
            std::hint::black_box(());
        },
        Some("none") => {}
        Some("error") => ResponseOutparam::set(
            response_out,
            Err(ErrorCode::InternalError(Some("asked to fail".to_owned()))),
        ),
        Some("stream") => {
            let response = OutgoingResponse::new(Fields::new());
            let Ok(body) = response.body() else {
                return None;
            };
            ResponseOutparam::set(response_out, Ok(response));
            let Ok(out) = body.write() else { return None };
            for part in ["one ", "two ", "three"] {
                let _ = out.blocking_write_and_flush(part.as_bytes());
            }
            drop(out);
            let _ = OutgoingBody::finish(body, None);
        }
        _ => return Some(response_out),
    }
    None
}

wasi::http::proxy::export!(HelloHttp);
