//! The one template engine: `${stageVariables.NAME}` and `$context.NAME` in mock integrations,
//! gateway responses and access log formats, `{name}` path parameters in an `http_proxy`
//! integration's `uri`, and HTTP API parameter mappings' selection expressions
//! (`$request.header.x`, `${context.requestId}`, `$response.body.a`).
//!
//! A template is parsed once, at load, into literal text and variables. The caller turns each
//! name into its own typed variable while parsing (an unknown name is a load error naming the
//! key path), and at render time writes each variable's value in one pass over the segments:
//! text a value brings in (from the request, from the configuration) is never read for
//! references again.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::{Error, KeyPath};

const STAGE_VARIABLE: &str = "${stageVariables.";
const CONTEXT: &str = "$context.";

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment<V> {
    /// Text written as is.
    Literal(String),
    /// A caller's variable, written by the caller's resolver at render time.
    Var(V),
}

/// How a `$context.` reference's name ends, and what an unknown one means.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ContextNames {
    /// `$context.` is plain text.
    Ignored,
    /// The name is the whole run of `[A-Za-z0-9._]` after `$context.` less a sentence-ending
    /// dot, and one the lookup does not know is a load error whose message lists `supported()`
    /// (access log formats).
    Whole {
        /// The supported names, for the error message.
        supported: fn() -> String,
    },
    /// The name is the longest start of that run the lookup knows, the rest plain text; where
    /// it knows none, `$context.` is plain text (gateway response bodies, which have always
    /// read `$context.error.messageString` as one name and left unknown ones alone).
    LongestKnown,
}

/// How a variable's text is written into the rendered template.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Escaping {
    /// As is (gateway responses, mock integrations).
    #[default]
    None,
    /// Control characters escaped (`\n`, `\u0007`), so that a log line stays one line.
    ControlChars,
    /// As JSON string content: control characters, quotes and backslashes escaped, so that a
    /// value cannot break out of its string.
    Json,
}

impl Escaping {
    /// Writes `text` to `out`, escaped.
    pub(crate) fn write(self, text: &str, out: &mut String) {
        if self == Escaping::None {
            out.push_str(text);
            return;
        }
        let json = self == Escaping::Json;
        for c in text.chars() {
            match c {
                '"' if json => out.push_str("\\\""),
                '\\' if json => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => {
                    // Writing to a String cannot fail.
                    let _ = fmt::Write::write_fmt(out, format_args!("\\u{:04x}", c as u32));
                }
                c => out.push(c),
            }
        }
    }
}

/// Where a variable's value goes while a template renders.
pub(crate) struct Output<'o> {
    out: &'o mut String,
    escaping: Escaping,
}

impl Output<'_> {
    /// Writes `text`, escaped as the template asks.
    pub(crate) fn text(&mut self, text: &str) {
        self.escaping.write(text, self.out);
    }

    /// Writes `text` as is: for values already in the template's syntax (a number, a JSON
    /// string with its quotes, text escaped for a JSON string).
    pub(crate) fn raw(&mut self, text: &str) {
        self.out.push_str(text);
    }
}

/// Formatted values (`write!`) are written as is, like [`Output::raw`].
impl fmt::Write for Output<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.raw(text);
        Ok(())
    }
}

/// A template parsed into literal text and the caller's variables `V`.
#[derive(Debug, Clone)]
pub(crate) struct Template<V> {
    segments: Vec<Segment<V>>,
    escaping: Escaping,
    /// The length of the text parsed: a first guess at a rendering's length.
    size_hint: usize,
}

/// A reference as the template spells it.
#[derive(Clone, Copy)]
enum Reference<'t> {
    StageVariable(&'t str),
    Context(&'t str),
    PathParameter(&'t str),
}

/// The start of a reference found while parsing, with the text after its opening.
enum Opened<'t> {
    StageVariable(&'t str),
    Context(&'t str),
    PathParameter(&'t str),
}

/// Which references a template recognises besides `$context.` names (see [`ContextNames`]).
#[derive(Clone, Copy)]
struct Recognised {
    stage_variables: bool,
    path_parameters: bool,
}

impl<V> Template<V> {
    /// Parses `text` (found at `at`), its `$context.` names read as `names` says and made
    /// variables by `lookup`; `${stageVariables.` is plain text.
    pub(crate) fn parse<'t>(
        text: &'t str,
        names: ContextNames,
        at: &KeyPath,
        mut lookup: impl FnMut(&'t str) -> Option<V>,
    ) -> Result<Self, Error> {
        let recognised = Recognised {
            stage_variables: false,
            path_parameters: false,
        };
        parse(text, recognised, names, at, |reference| match reference {
            Reference::Context(name) => lookup(name),
            Reference::StageVariable(_) | Reference::PathParameter(_) => None,
        })
    }

    /// Parses `text` (found at `at`) as [`Template::parse`] does, and puts in each
    /// `${stageVariables.NAME}` the variable's value from `variables` now (nothing for an
    /// undefined one, as in API Gateway): stage variables are known at load, and the values put
    /// in are plain text, never read for `$context` names.
    pub(crate) fn parse_with_stage_variables<'t>(
        text: &'t str,
        names: ContextNames,
        variables: &BTreeMap<String, String>,
        at: &KeyPath,
        mut lookup: impl FnMut(&'t str) -> Option<V>,
    ) -> Result<Self, Error> {
        enum Parsed<'t, V> {
            Stage(&'t str),
            Var(V),
        }
        let recognised = Recognised {
            stage_variables: true,
            path_parameters: false,
        };
        let parsed = parse(text, recognised, names, at, |reference| match reference {
            Reference::StageVariable(name) => Some(Parsed::Stage(name)),
            Reference::Context(name) => lookup(name).map(Parsed::Var),
            Reference::PathParameter(_) => None,
        })?;
        Ok(parsed.bind(|part| match part {
            Parsed::Stage(name) => {
                Segment::Literal(variables.get(name).cloned().unwrap_or_default())
            }
            Parsed::Var(var) => Segment::Var(var),
        }))
    }

    /// Parses an `http_proxy` integration's `uri` (found at `at`): each
    /// `${stageVariables.NAME}` gets the variable's value from `variables` now (nothing for an
    /// undefined one), and each `{name}` becomes the variable `lookup` makes of the name
    /// (`[A-Za-z0-9._-]`, as route keys name path variables), filled in per request.
    /// `$context.` is plain text. Values put in, now or per request, are never parsed again.
    pub(crate) fn parse_uri<'t>(
        text: &'t str,
        variables: &BTreeMap<String, String>,
        at: &KeyPath,
        mut lookup: impl FnMut(&'t str) -> V,
    ) -> Result<Self, Error> {
        enum Parsed<'t, V> {
            Stage(&'t str),
            Var(V),
        }
        let recognised = Recognised {
            stage_variables: true,
            path_parameters: true,
        };
        let parsed = parse(
            text,
            recognised,
            ContextNames::Ignored,
            at,
            |reference| match reference {
                Reference::StageVariable(name) => Some(Parsed::Stage(name)),
                Reference::PathParameter(name) => Some(Parsed::Var(lookup(name))),
                Reference::Context(_) => None,
            },
        )?;
        Ok(parsed.bind(|part| match part {
            Parsed::Stage(name) => {
                Segment::Literal(variables.get(name).cloned().unwrap_or_default())
            }
            Parsed::Var(var) => Segment::Var(var),
        }))
    }

    /// The same template with its variables' text written with `escaping`.
    pub(crate) fn with_escaping(mut self, escaping: Escaping) -> Self {
        self.escaping = escaping;
        self
    }

    /// How variables' text is escaped.
    #[cfg(test)]
    pub(crate) fn escaping(&self) -> Escaping {
        self.escaping
    }

    /// The parsed pieces, adjacent literals merged.
    pub(crate) fn segments(&self) -> &[Segment<V>] {
        &self.segments
    }

    /// Renders the template in one pass: literals as they are, each variable by `resolve`
    /// (which writes its value to the [`Output`], escaped or raw).
    pub(crate) fn render(&self, mut resolve: impl FnMut(&V, &mut Output<'_>)) -> String {
        let mut out = String::with_capacity(self.size_hint);
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Var(var) => resolve(
                    var,
                    &mut Output {
                        out: &mut out,
                        escaping: self.escaping,
                    },
                ),
            }
        }
        out
    }

    /// The same template with each variable replaced by what `resolve` makes of it: a literal
    /// (merged into its neighbours, never parsed again) or another variable.
    fn bind<W>(self, mut resolve: impl FnMut(V) -> Segment<W>) -> Template<W> {
        let mut segments = Vec::with_capacity(self.segments.len());
        for segment in self.segments {
            let segment = match segment {
                Segment::Literal(text) => Segment::Literal(text),
                Segment::Var(var) => resolve(var),
            };
            push(&mut segments, segment);
        }
        Template {
            segments,
            escaping: self.escaping,
            size_hint: self.size_hint,
        }
    }
}

/// What a parameter mapping's `$request.`, `$context.` or `$response.` reference reads (HTTP
/// APIs' selection expressions, see [`Template::parse_selection`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Selection {
    /// `$request.NAME` / `${request.NAME}`.
    Request,
    /// `$context.NAME` / `${context.NAME}`.
    Context,
    /// `$response.NAME` / `${response.NAME}`.
    Response,
}

/// The openings of a selection expression's references, bare and braced. `stageVariables`
/// is `None`: it is put in at load.
const SELECTIONS: [(&str, bool, Option<Selection>); 8] = [
    ("${request.", true, Some(Selection::Request)),
    ("${context.", true, Some(Selection::Context)),
    ("${response.", true, Some(Selection::Response)),
    ("${stageVariables.", true, None),
    ("$request.", false, Some(Selection::Request)),
    ("$context.", false, Some(Selection::Context)),
    ("$response.", false, Some(Selection::Response)),
    ("$stageVariables.", false, None),
];

impl<V> Template<V> {
    /// Parses an HTTP API parameter mapping's value (found at `at`): static text with
    /// `$request.header.x`, `$context.requestId`, `$stageVariables.NAME`, `$response.body.a`
    /// ("API Gateway Developer Guide, Transforming API requests and responses",
    /// http-api-parameter-mapping.md), each also written `${request.header.x}` so that text may
    /// follow it ("To use multiple variables in a selection expression, enclose the variable in
    /// brackets"). A bare name is the run of `[A-Za-z0-9._-[]]` after its opening, less a
    /// sentence-ending dot. Stage variables are put in now (nothing for an undefined one, as in
    /// API Gateway); `lookup` makes the others variables, or says why it cannot (a load
    /// error). A `$` that opens none of these is text.
    pub(crate) fn parse_selection<'t>(
        text: &'t str,
        variables: &BTreeMap<String, String>,
        at: &KeyPath,
        mut lookup: impl FnMut(Selection, &'t str) -> Result<V, String>,
    ) -> Result<Self, Error> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some((start, opening, braced, selection)) =
            rest.match_indices('$').find_map(|(i, _)| {
                SELECTIONS
                    .iter()
                    .find(|(opening, _, _)| rest[i..].starts_with(opening))
                    .map(|&(opening, braced, selection)| (i, opening, braced, selection))
            })
        {
            push(&mut segments, Segment::Literal(rest[..start].to_owned()));
            let after = &rest[start + opening.len()..];
            let (name, next) = if braced {
                let end = after.find('}').ok_or_else(|| {
                    Error::config(
                        at.clone(),
                        format!("unterminated \"{opening}\" in \"{text}\""),
                    )
                })?;
                (&after[..end], &after[end + 1..])
            } else {
                let run = after
                    .find(|c: char| {
                        !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '[' | ']'))
                    })
                    .unwrap_or(after.len());
                let name = after[..run].trim_end_matches('.');
                (name, &after[name.len()..])
            };
            let written = if braced {
                format!("{opening}{name}}}")
            } else {
                format!("{opening}{name}")
            };
            if name.is_empty() {
                return Err(Error::config(
                    at.clone(),
                    format!("\"{written}\" names nothing"),
                ));
            }
            match selection {
                None => {
                    if !is_stage_variable_name(name) {
                        return Err(Error::config(
                            at.clone(),
                            format!(
                                "bad stage variable reference \"{written}\": names use [A-Za-z0-9_]"
                            ),
                        ));
                    }
                    let value = variables.get(name).cloned().unwrap_or_default();
                    push(&mut segments, Segment::Literal(value));
                }
                Some(selection) => {
                    let var = lookup(selection, name).map_err(|why| {
                        Error::config(at.clone(), format!("\"{written}\": {why}"))
                    })?;
                    push(&mut segments, Segment::Var(var));
                }
            }
            rest = next;
        }
        push(&mut segments, Segment::Literal(rest.to_owned()));
        Ok(Template {
            segments,
            escaping: Escaping::None,
            size_hint: text.len(),
        })
    }
}

/// Whether `name` may follow `${stageVariables.`: API Gateway's `[A-Za-z0-9_]+`.
pub(crate) fn is_stage_variable_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `name` may stand in `{name}`: a route key's path variable name, `[A-Za-z0-9._-]`.
fn is_path_parameter_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The parser behind [`Template::parse`], [`Template::parse_with_stage_variables`] and
/// [`Template::parse_uri`]: `${stageVariables.` and `{name}` are recognised as `recognised`
/// says.
fn parse<'t, V>(
    text: &'t str,
    recognised: Recognised,
    names: ContextNames,
    at: &KeyPath,
    mut lookup: impl FnMut(Reference<'t>) -> Option<V>,
) -> Result<Template<V>, Error> {
    let context = !matches!(names, ContextNames::Ignored);
    let mut segments = Vec::new();
    let mut rest = text;
    loop {
        // The next `$` or `{` that opens a reference this template recognises, and what
        // follows it. A `${stageVariables.` is found at its `$`, before its `{` is looked at.
        let next = rest.match_indices(['$', '{']).find_map(|(i, _)| {
            let tail = &rest[i..];
            if let Some(after) = tail.strip_prefix('{') {
                return recognised
                    .path_parameters
                    .then_some((i, Opened::PathParameter(after)));
            }
            let stage = tail
                .strip_prefix(STAGE_VARIABLE)
                .filter(|_| recognised.stage_variables)
                .map(Opened::StageVariable);
            let context = tail
                .strip_prefix(CONTEXT)
                .filter(|_| context)
                .map(Opened::Context);
            stage.or(context).map(|opened| (i, opened))
        });
        let Some((start, opened)) = next else { break };
        push(&mut segments, Segment::Literal(rest[..start].to_owned()));
        match opened {
            Opened::StageVariable(after) => {
                let end = after.find('}').ok_or_else(|| {
                    Error::config(
                        at.clone(),
                        format!("unterminated \"{STAGE_VARIABLE}\" in \"{text}\""),
                    )
                })?;
                let name = &after[..end];
                if !is_stage_variable_name(name) {
                    return Err(Error::config(
                        at.clone(),
                        format!(
                            "bad stage variable reference \"{STAGE_VARIABLE}{name}}}\": names use [A-Za-z0-9_]"
                        ),
                    ));
                }
                let var = lookup(Reference::StageVariable(name)).ok_or_else(|| {
                    Error::config(
                        at.clone(),
                        format!("unknown variable \"{STAGE_VARIABLE}{name}}}\""),
                    )
                })?;
                push(&mut segments, Segment::Var(var));
                rest = &after[end + 1..];
            }
            Opened::PathParameter(after) => {
                let end = after.find('}').ok_or_else(|| {
                    Error::config(at.clone(), format!("unterminated \"{{\" in \"{text}\""))
                })?;
                let name = &after[..end];
                if !is_path_parameter_name(name) {
                    return Err(Error::config(
                        at.clone(),
                        format!(
                            "bad path parameter reference \"{{{name}}}\": names use [A-Za-z0-9._-] (write {{proxy}} for a route's {{proxy+}})"
                        ),
                    ));
                }
                let var = lookup(Reference::PathParameter(name)).ok_or_else(|| {
                    Error::config(at.clone(), format!("unknown path parameter \"{{{name}}}\""))
                })?;
                push(&mut segments, Segment::Var(var));
                rest = &after[end + 1..];
            }
            Opened::Context(after) => {
                // Names are ASCII: every length up to `run` is a char boundary.
                let run = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
                    .unwrap_or(after.len());
                let found = match names {
                    ContextNames::Ignored => None,
                    ContextNames::Whole { supported } => {
                        // A sentence-ending dot is not part of the name.
                        let name = after[..run].trim_end_matches('.');
                        let var = lookup(Reference::Context(name)).ok_or_else(|| {
                            Error::config(
                                at.clone(),
                                format!(
                                    "unknown variable \"{CONTEXT}{name}\": supported are {}",
                                    supported()
                                ),
                            )
                        })?;
                        Some((name.len(), var))
                    }
                    ContextNames::LongestKnown => (1..=run).rev().find_map(|len| {
                        lookup(Reference::Context(&after[..len])).map(|v| (len, v))
                    }),
                };
                match found {
                    Some((len, var)) => {
                        push(&mut segments, Segment::Var(var));
                        rest = &after[len..];
                    }
                    None => {
                        push(&mut segments, Segment::Literal(CONTEXT.to_owned()));
                        rest = after;
                    }
                }
            }
        }
    }
    push(&mut segments, Segment::Literal(rest.to_owned()));
    Ok(Template {
        segments,
        escaping: Escaping::None,
        size_hint: text.len(),
    })
}

/// Appends `segment`, merging a literal into a literal before it and dropping empty ones.
fn push<V>(segments: &mut Vec<Segment<V>>, segment: Segment<V>) {
    if let Segment::Literal(text) = &segment {
        if text.is_empty() {
            return;
        }
        if let Some(Segment::Literal(last)) = segments.last_mut() {
            last.push_str(text);
            return;
        }
    }
    segments.push(segment);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A variable of the tests: the name it was parsed from.
    type Name = String;

    fn at() -> KeyPath {
        KeyPath::root().key("body")
    }

    fn supported() -> String {
        "$context.a, $context.a.b".to_owned()
    }

    /// Knows `a`, `a.b` and `error.message`/`error.messageString` (prefixes of each other).
    fn lookup(name: &str) -> Option<Name> {
        ["a", "a.b", "error.message", "error.messageString"]
            .contains(&name)
            .then(|| name.to_owned())
    }

    /// Renders each variable as `<name>`.
    fn show(template: &Template<Name>) -> String {
        template.render(|name, out| {
            out.raw("<");
            out.text(name);
            out.raw(">");
        })
    }

    #[test]
    fn whole_names_end_at_the_run_and_unknown_ones_are_load_errors() {
        let names = ContextNames::Whole { supported };
        let t = Template::parse("x $context.a.b. y $context.a", names, &at(), lookup).unwrap();
        assert_eq!(show(&t), "x <a.b>. y <a>");
        let err = Template::parse("$context.a.bc", names, &at(), lookup).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("body: unknown variable \"$context.a.bc\""),
            "{text}"
        );
        assert!(
            text.ends_with("supported are $context.a, $context.a.b"),
            "{text}"
        );
        assert!(Template::parse("$context. ", names, &at(), lookup).is_err());
    }

    #[test]
    fn longest_known_names_win_and_unknown_ones_stay_text() {
        let names = ContextNames::LongestKnown;
        let t = Template::parse(
            "$context.error.messageString|$context.error.message|$context.error.messageX|$context.a.bc|$context.nope|$context.$context.a",
            names,
            &at(),
            lookup,
        )
        .unwrap();
        assert_eq!(
            show(&t),
            "<error.messageString>|<error.message>|<error.message>X|<a.b>c|$context.nope|$context.<a>"
        );
    }

    #[test]
    fn substituted_text_is_never_read_again() {
        let t = Template::parse(
            "$context.a and $context.a.b",
            ContextNames::LongestKnown,
            &at(),
            lookup,
        )
        .unwrap();
        let rendered = t.render(|name, out| match name.as_str() {
            "a" => out.text("$context.a.b"),
            _ => out.text("${stageVariables.X}"),
        });
        assert_eq!(rendered, "$context.a.b and ${stageVariables.X}");
    }

    #[test]
    fn stage_variables_are_put_in_at_load() {
        let variables = BTreeMap::from([
            ("T".to_owned(), "dev-Users".to_owned()),
            // Values cannot hold `$`; if one could, it would still be text.
            ("REF".to_owned(), "a".to_owned()),
        ]);
        let t = Template::parse_with_stage_variables(
            "${stageVariables.T}:$context.a:${stageVariables.NOPE}:$context.${stageVariables.REF}",
            ContextNames::LongestKnown,
            &variables,
            &at(),
            lookup,
        )
        .unwrap();
        assert_eq!(
            t.segments(),
            [
                Segment::Literal("dev-Users:".to_owned()),
                Segment::Var("a".to_owned()),
                Segment::Literal("::$context.a".to_owned()),
            ]
        );
        assert_eq!(show(&t), "dev-Users:<a>::$context.a");
        // Without stage variables, `${stageVariables.` is text.
        let t = Template::parse("${stageVariables.T}", ContextNames::Ignored, &at(), lookup);
        assert_eq!(show(&t.unwrap()), "${stageVariables.T}");
    }

    #[test]
    fn malformed_stage_variable_references_are_load_errors() {
        let parse = |text| {
            Template::<Name>::parse_with_stage_variables(
                text,
                ContextNames::Ignored,
                &BTreeMap::new(),
                &at(),
                |_| None,
            )
            .map_err(|e| e.to_string())
        };
        assert_eq!(
            parse("t=${stageVariables.T").unwrap_err(),
            "body: unterminated \"${stageVariables.\" in \"t=${stageVariables.T\""
        );
        assert_eq!(
            parse("${stageVariables.a-b}").unwrap_err(),
            "body: bad stage variable reference \"${stageVariables.a-b}\": names use [A-Za-z0-9_]"
        );
        assert!(parse("${stageVariables.}").is_err());
        assert_eq!(
            show(&parse("$ ${other} $context.a").unwrap()),
            "$ ${other} $context.a"
        );
    }

    #[test]
    fn escaping_applies_to_text_not_to_raw_values() {
        let t = Template::parse(
            "{\"v\":\"$context.a\"}",
            ContextNames::Whole { supported },
            &at(),
            lookup,
        )
        .unwrap();
        let render = |t: &Template<Name>| {
            t.render(|_, out| {
                out.text("a\"b\\c\nd\u{7}");
                out.raw("\"");
            })
        };
        assert_eq!(render(&t), "{\"v\":\"a\"b\\c\nd\u{7}\"\"}");
        let t = t.with_escaping(Escaping::ControlChars);
        assert_eq!(render(&t), "{\"v\":\"a\"b\\c\\nd\\u0007\"\"}");
        let t = t.with_escaping(Escaping::Json);
        assert_eq!(render(&t), "{\"v\":\"a\\\"b\\\\c\\nd\\u0007\"\"}");
        let mut plain = String::new();
        Escaping::ControlChars.write("a\"b\nc", &mut plain);
        assert_eq!(plain, "a\"b\\nc");
    }

    #[test]
    fn uris_take_stage_variables_now_and_path_parameters_later() {
        let variables = BTreeMap::from([("HOST".to_owned(), "orders.internal:8080".to_owned())]);
        let t = Template::parse_uri(
            "http://${stageVariables.HOST}/orders/{proxy}?v=${stageVariables.NOPE}&c=$context.a",
            &variables,
            &at(),
            str::to_owned,
        )
        .unwrap();
        assert_eq!(
            t.segments(),
            [
                Segment::Literal("http://orders.internal:8080/orders/".to_owned()),
                Segment::Var("proxy".to_owned()),
                Segment::Literal("?v=&c=$context.a".to_owned()),
            ]
        );
        // A value put in is never read for references, whatever it holds.
        assert_eq!(
            t.render(|_, out| out.raw("{id}${stageVariables.HOST}")),
            "http://orders.internal:8080/orders/{id}${stageVariables.HOST}?v=&c=$context.a"
        );
        let parse = |text| {
            Template::parse_uri(text, &variables, &at(), str::to_owned).map_err(|e| e.to_string())
        };
        assert_eq!(
            parse("http://h/{id").unwrap_err(),
            "body: unterminated \"{\" in \"http://h/{id\""
        );
        assert!(parse("http://h/{proxy+}")
            .unwrap_err()
            .contains("bad path parameter reference \"{proxy+}\""));
        assert!(parse("http://h/{}").is_err());
        // Elsewhere a `{` is text.
        let t = Template::parse("{\"a\":1}", ContextNames::Ignored, &at(), lookup).unwrap();
        assert_eq!(show(&t), "{\"a\":1}");
    }

    #[test]
    fn selections_read_bare_and_braced_references_and_put_stage_variables_in() {
        let variables = BTreeMap::from([("ENV".to_owned(), "prod".to_owned())]);
        let parse = |text| {
            Template::parse_selection(text, &variables, &at(), |selection, name| {
                match (selection, name) {
                    (_, "nope") => Err("unknown".to_owned()),
                    (Selection::Request, name) => Ok(format!("req:{name}")),
                    (Selection::Context, name) => Ok(format!("ctx:{name}")),
                    (Selection::Response, name) => Ok(format!("res:{name}")),
                }
            })
            .map_err(|e| e.to_string())
        };
        let t = parse("$request.header.x-a").unwrap();
        assert_eq!(show(&t), "<req:header.x-a>");
        let t = parse("${request.path.id} and ${context.requestId}/$stageVariables.ENV.").unwrap();
        assert_eq!(show(&t), "<req:path.id> and <ctx:requestId>/prod.");
        let t = parse("v=$response.body.items[0].id;${stageVariables.NONE}$5").unwrap();
        assert_eq!(show(&t), "v=<res:body.items[0].id>;$5");
        // Static text only.
        assert_eq!(
            parse("''").unwrap().segments(),
            [Segment::Literal("''".to_owned())]
        );
        assert_eq!(
            parse("${request.header.a").unwrap_err(),
            "body: unterminated \"${request.\" in \"${request.header.a\""
        );
        assert_eq!(
            parse("$context.nope").unwrap_err(),
            "body: \"$context.nope\": unknown"
        );
        assert!(parse("${context.}").unwrap_err().contains("names nothing"));
        assert!(parse("$stageVariables.a-b")
            .unwrap_err()
            .contains("bad stage variable reference"));
    }

    #[test]
    fn literals_merge_and_empty_templates_have_no_segments() {
        let t = Template::parse("", ContextNames::LongestKnown, &at(), lookup).unwrap();
        assert!(t.segments().is_empty());
        let t = Template::parse(
            "x$context.nope y",
            ContextNames::LongestKnown,
            &at(),
            lookup,
        );
        assert_eq!(
            t.unwrap().segments(),
            [Segment::Literal("x$context.nope y".to_owned())]
        );
    }
}
