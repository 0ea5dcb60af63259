// js_hello: an integration written in JavaScript (componentize-js, world `lazy-integration`).
// Answers 200 {"message": "hello from javascript", "path": <raw path>, "stage": <stage>,
// "calls": n}: `calls` counts the calls this instance has served (module-level state: always 1
// on a fresh instance, counting up on a warm one).
//
// The world's export `handle-request` is the named export `handleRequest`; the request is an
// `incoming-request` resource, read through its methods (`request.rawPath()`,
// `request.header("accept")`): only what the plugin asks for is converted into JavaScript
// values, so a request with many headers costs no more than one with few. Records arrive as
// objects with camelCase fields, list<u8> as Uint8Array. Returning the response is `ok`;
// throwing is `err`.

const encoder = new TextEncoder();

// Calls this instance has served: lives as long as the instance.
let calls = 0;

export function handleRequest(request) {
  calls += 1;
  const body = JSON.stringify({
    message: "hello from javascript",
    path: request.rawPath(),
    stage: request.stage(),
    calls,
  });
  return {
    status: 200,
    headers: [["content-type", "application/json"]],
    cookies: [],
    body: encoder.encode(body),
  };
}
