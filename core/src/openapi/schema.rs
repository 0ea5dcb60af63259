//! `components/schemas` as the API's models (JSON Schema draft 4, as API Gateway's models are),
//! and the request bodies that use them.
//!
//! A schema is taken as the document writes it, with two changes: a `$ref` to another schema
//! (`#/components/schemas/Pet`) becomes API Gateway's model URL
//! (`https://apigateway.amazonaws.com/restapis/{apiId}/models/Pet`), which is how a REST API's
//! models refer to each other and what the native validator resolves; and OpenAPI 3.0's
//! `nullable: true` becomes draft 4's `"null"` among the types. Other OpenAPI-only keywords
//! (`example`, `readOnly`, `discriminator`, ...) are annotations draft 4 ignores.

use serde_json::{Map, Value};

use super::context::{pointer_token, Ctx};
use crate::error::{Error, KeyPath};

const SCHEMAS_REF: &str = "#/components/schemas/";

/// Adds every schema of `components/schemas` as a model.
pub(super) fn models(ctx: &mut Ctx<'_>) -> Result<(), Error> {
    // In the document's order (openapiv3 keeps it; the JSON of the schemas themselves does not
    // need to).
    let names: Vec<String> = ctx
        .document
        .components
        .iter()
        .flat_map(|c| c.schemas.keys().cloned())
        .collect();
    for name in &names {
        let Some(schema) = ctx
            .raw
            .pointer(&format!("/components/schemas/{}", pointer_token(name)))
            .cloned()
        else {
            continue;
        };
        let at = KeyPath::root().key("components").key("schemas").key(name);
        if !valid_model_name(name) {
            return Err(Error::config(
                at,
                "a model name is letters, digits, '.', '_' and '-' (it is part of the model's URL)",
            ));
        }
        let model = draft4(&schema, &ctx.api_id, &at)?;
        ctx.report
            .origin(&KeyPath::root().key("models").key(name), &at);
        ctx.models.insert(name.clone(), model);
    }
    Ok(())
}

fn valid_model_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The model a request body's schema (at `at`, `pointer` in the document) stands for: the
/// referenced one, or a new one named after the route.
pub(super) fn body_model(
    ctx: &mut Ctx<'_>,
    pointer: &str,
    suggested: &str,
    at: &KeyPath,
) -> Result<String, Error> {
    let schema = ctx
        .raw_at(pointer)
        .cloned()
        .ok_or_else(|| Error::config(at.clone(), "missing schema"))?;
    if let Some(reference) = schema.get("$ref") {
        let name = reference
            .as_str()
            .and_then(|r| r.strip_prefix(SCHEMAS_REF))
            .filter(|n| !n.contains('/'))
            .ok_or_else(|| {
                Error::config(
                    at.key("$ref"),
                    format!("expected a reference to {SCHEMAS_REF}NAME"),
                )
            })?;
        if !ctx.models.contains_key(name) {
            return Err(Error::config(
                at.key("$ref"),
                format!("components.schemas has no schema \"{name}\""),
            ));
        }
        return Ok(name.to_owned());
    }
    let mut name = suggested.to_owned();
    let mut n = 1;
    while ctx.models.contains_key(&name) {
        n += 1;
        name = format!("{suggested}{n}");
    }
    let model = draft4(&schema, &ctx.api_id, at)?;
    ctx.report
        .origin(&KeyPath::root().key("models").key(&name), at);
    ctx.models.insert(name.clone(), model);
    Ok(name)
}

/// An OpenAPI 3.0 schema as a draft 4 schema (see the module's comment).
pub(super) fn draft4(schema: &Value, api_id: &str, at: &KeyPath) -> Result<Value, Error> {
    let base = format!("https://apigateway.amazonaws.com/restapis/{api_id}/models/");
    convert(schema, &base, at)
}

/// Keywords whose value is one schema, a map of schemas, or a list of schemas.
const ONE: [&str; 3] = ["not", "additionalItems", "additionalProperties"];
const MAP: [&str; 4] = [
    "properties",
    "patternProperties",
    "definitions",
    "dependencies",
];
const LIST: [&str; 3] = ["allOf", "anyOf", "oneOf"];

fn convert(schema: &Value, base: &str, at: &KeyPath) -> Result<Value, Error> {
    let Some(fields) = schema.as_object() else {
        return Ok(schema.clone()); // `additionalProperties: false` and the like
    };
    let mut out = Map::new();
    for (key, value) in fields {
        let here = at.key(key);
        let converted = match key.as_str() {
            "$ref" => Value::String(reference(value, base, &here)?),
            "nullable" => continue,
            "items" if value.is_array() => list(value, base, &here)?,
            "items" => convert(value, base, &here)?,
            k if ONE.contains(&k) => convert(value, base, &here)?,
            k if LIST.contains(&k) => list(value, base, &here)?,
            k if MAP.contains(&k) => match value.as_object() {
                Some(map) => {
                    let mut converted = Map::new();
                    for (name, schema) in map {
                        // `dependencies` may map to a list of names rather than a schema.
                        converted.insert(name.clone(), convert(schema, base, &here.key(name))?);
                    }
                    Value::Object(converted)
                }
                None => value.clone(),
            },
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }
    if fields.get("nullable") == Some(&Value::Bool(true)) {
        match out.get_mut("type") {
            Some(Value::String(t)) => {
                let t = t.clone();
                out.insert(
                    "type".into(),
                    Value::Array(vec![Value::String(t), "null".into()]),
                );
            }
            Some(Value::Array(types)) if !types.contains(&Value::from("null")) => {
                types.push("null".into())
            }
            _ => {}
        }
        if let Some(Value::Array(values)) = out.get_mut("enum") {
            if !values.contains(&Value::Null) {
                values.push(Value::Null);
            }
        }
    }
    Ok(Value::Object(out))
}

fn list(value: &Value, base: &str, at: &KeyPath) -> Result<Value, Error> {
    match value.as_array() {
        Some(items) => Ok(Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| convert(item, base, &at.index(i)))
                .collect::<Result<_, _>>()?,
        )),
        None => Ok(value.clone()),
    }
}

/// `#/components/schemas/NAME[/more]` as the model URL (`base` + `NAME[#/more]`); a reference
/// anywhere else is refused (nothing is fetched).
fn reference(value: &Value, base: &str, at: &KeyPath) -> Result<String, Error> {
    let text = value
        .as_str()
        .ok_or_else(|| Error::config(at.clone(), "expected a string"))?;
    let rest = text.strip_prefix(SCHEMAS_REF).ok_or_else(|| {
        Error::config(
            at.clone(),
            format!(
                "\"{text}\": a schema may refer only to {SCHEMAS_REF}NAME (nothing is fetched)"
            ),
        )
    })?;
    Ok(match rest.split_once('/') {
        Some((name, inner)) => format!("{base}{name}#/{inner}"),
        None => format!("{base}{rest}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // A model refers to another by its URL: "$ref":
    // "https://apigateway.amazonaws.com/restapis/{restapi_id}/models/{model_name}" (developer
    // guide, "Working with models and mapping templates").
    #[test]
    fn refs_become_model_urls_and_nullable_a_type() {
        let schema = json!({
            "type": "object",
            "properties": {
                "pet": { "$ref": "#/components/schemas/Pet" },
                "tag": { "type": "string", "nullable": true, "enum": ["a"] },
                "nullable": { "type": "integer" }
            },
            "items": [{ "$ref": "#/components/schemas/Pet/properties/id" }],
            "example": { "$ref": "not a schema" }
        });
        let out = draft4(&schema, "petstore", &KeyPath::root()).unwrap();
        assert_eq!(
            out["properties"]["pet"]["$ref"],
            "https://apigateway.amazonaws.com/restapis/petstore/models/Pet"
        );
        assert_eq!(out["properties"]["tag"]["type"], json!(["string", "null"]));
        assert_eq!(out["properties"]["tag"]["enum"], json!(["a", null]));
        assert!(out["properties"]["tag"].get("nullable").is_none());
        // A property named `nullable` is a property, not the keyword.
        assert_eq!(out["properties"]["nullable"], json!({ "type": "integer" }));
        assert_eq!(
            out["items"][0]["$ref"],
            "https://apigateway.amazonaws.com/restapis/petstore/models/Pet#/properties/id"
        );
        // Examples are data, not schemas.
        assert_eq!(out["example"], json!({ "$ref": "not a schema" }));
    }

    #[test]
    fn refs_out_of_the_document_are_refused() {
        let err = draft4(
            &json!({ "$ref": "https://example.com/pet.json" }),
            "a",
            &KeyPath::root().key("components").key("schemas").key("X"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("components.schemas.X.$ref"), "{err}");
        assert!(err.contains("nothing is fetched"), "{err}");
    }
}
