// js_hello: an integration written in JavaScript (componentize-js, world `integration`).
// Answers 200 {"message": "hello from javascript", "path": <raw path>, "stage": <stage>}.
//
// The world's export `handle` is a named export; records arrive as objects with camelCase
// fields, list<u8> as Uint8Array. Returning the response is `ok`; throwing is `err`.

const encoder = new TextEncoder();

export function handle(request) {
  const body = JSON.stringify({
    message: "hello from javascript",
    path: request.rawPath,
    stage: request.stage,
  });
  return {
    status: 200,
    headers: [["content-type", "application/json"]],
    cookies: [],
    body: encoder.encode(body),
  };
}
