//! The arguments of `#[llm_call(…)]`, `#[agent(…)]` and `#[session(…)]`, parsed with every
//! error collected.

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Ident, Lit, LitStr, Path, Token};

/// A value given as a string literal or as an expression.
pub(crate) enum Value {
    Literal(LitStr),
    Expr(Box<Expr>),
}

/// Which attribute the arguments are of: what span it opens, and so which arguments it takes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `#[llm_call]`: an LLM call.
    Call,
    /// `#[agent]`: an agent run.
    Agent,
    /// `#[session]`: a session.
    Session,
}

impl Kind {
    /// The attribute, as written.
    pub(crate) fn attribute(self) -> &'static str {
        match self {
            Kind::Call => "llm_call",
            Kind::Agent => "agent",
            Kind::Session => "session",
        }
    }

    /// The arguments the attribute takes, as an error message lists them.
    fn known(self) -> &'static str {
        match self {
            Kind::Call => CALL_ARGUMENTS,
            Kind::Agent => AGENT_ARGUMENTS,
            Kind::Session => SESSION_ARGUMENTS,
        }
    }

    /// Whether the attribute takes the argument `key`.
    fn accepts(self, key: &str) -> bool {
        self.known()
            .split(", ")
            .any(|known| known.trim_end_matches("(…)") == key)
    }
}

/// The names a term of the call takes as a literal, read as `cost_core` reads them at run time
/// (trimmed, any case, an optional prefix dropped), so that a misspelt literal does not compile.
struct TermNames {
    /// A prefix some providers put before the name (Gemini's `SERVICE_TIER_`), lower case.
    prefix: &'static str,
    /// Every name accepted after the prefix, lower case.
    names: &'static [&'static str],
    /// The error a literal that is none of them gets.
    message: &'static str,
}

impl TermNames {
    fn accepts(&self, literal: &str) -> bool {
        let lower = literal.trim().to_ascii_lowercase();
        let name = lower.strip_prefix(self.prefix).unwrap_or(&lower);
        self.names.contains(&name)
    }
}

/// `cost_core::ServiceTier::parse`'s names.
const SERVICE_TIER: TermNames = TermNames {
    prefix: "service_tier_",
    names: &[
        "",
        "standard",
        "default",
        "auto",
        "on_demand",
        "unspecified",
        "standard_only",
        "batch",
        "batches",
        "flex",
        "priority",
        "fast",
        "fast_mode",
        "ultrafast",
    ],
    message: "a service tier is `standard` (or `default`, `auto`), `batch`, `flex`, `priority` (or `fast`) or `fast_mode` (or `ultrafast`)",
};

/// `cost_core::SearchContextSize::parse`'s names.
const SEARCH_CONTEXT_SIZE: TermNames = TermNames {
    prefix: "search_context_size_",
    names: &["low", "medium", "high"],
    message: "a search context size is `low`, `medium` or `high`",
};

/// Adds an error when `value` is a literal that `names` does not accept; an expression is
/// read when the call runs.
fn check_literal(value: &Option<Value>, names: &TermNames, errors: &mut Vec<syn::Error>) {
    if let Some(Value::Literal(literal)) = value
        && !names.accepts(&literal.value())
    {
        errors.push(syn::Error::new(literal.span(), names.message));
    }
}

#[derive(Default)]
pub(crate) struct Args {
    pub(crate) model: Option<Value>,
    pub(crate) provider: Option<Value>,
    /// A call's `gen_ai.operation.name`.
    pub(crate) operation: Option<Value>,
    pub(crate) feature: Option<Value>,
    /// A call's agent; an agent run's name.
    pub(crate) agent: Option<Value>,
    /// A session's id.
    pub(crate) id: Option<Value>,
    pub(crate) user: Option<Value>,
    pub(crate) org: Option<Value>,
    pub(crate) service_tier: Option<Value>,
    pub(crate) data_residency: Option<Value>,
    pub(crate) search_context_size: Option<Value>,
    pub(crate) name: Option<LitStr>,
    pub(crate) level: Option<(LitStr, TokenStream)>,
    pub(crate) fields: Option<TokenStream>,
    pub(crate) skip: Vec<Ident>,
    pub(crate) skip_all: bool,
    pub(crate) err: bool,
    pub(crate) krate: Option<Path>,
    pub(crate) max_output_tokens: Option<Expr>,
    pub(crate) estimate_input: Option<Expr>,
    pub(crate) max_web_searches: Option<Expr>,
    /// A predicate over a call's error: true when the provider may have billed the call.
    pub(crate) billed_on_err: Option<Expr>,
}

const CALL_ARGUMENTS: &str = "model, provider, operation, feature, agent, service_tier, data_residency, search_context_size, name, level, fields(…), skip(…), skip_all, err, crate, max_output_tokens, estimate_input, max_web_searches, billed_on_err";
const AGENT_ARGUMENTS: &str =
    "name, feature, user, org, level, fields(…), skip(…), skip_all, crate";
const SESSION_ARGUMENTS: &str =
    "id, name, feature, user, org, level, fields(…), skip(…), skip_all, crate";

/// One `key`, `key = value` or `key(…)` argument, parsed loosely so that every problem can be
/// reported with its span.
struct RawArg {
    key: Ident,
    value: Option<Expr>,
    list: Option<TokenStream>,
}

impl Parse for RawArg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key = if input.peek(Token![crate]) {
            let krate: Token![crate] = input.parse()?;
            Ident::new("crate", krate.span)
        } else {
            input.parse::<Ident>()?
        };
        if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            let value: Expr = if key == "crate" {
                let path: Path = input.parse()?;
                syn::parse_quote!(#path)
            } else {
                input.parse()?
            };
            Ok(RawArg {
                key,
                value: Some(value),
                list: None,
            })
        } else if input.peek(syn::token::Paren) {
            let content;
            syn::parenthesized!(content in input);
            Ok(RawArg {
                key,
                value: None,
                list: Some(content.parse()?),
            })
        } else {
            Ok(RawArg {
                key,
                value: None,
                list: None,
            })
        }
    }
}

fn literal(value: &Expr) -> Option<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s.clone()),
        _ => None,
    }
}

impl Args {
    /// Parses the arguments of a `kind` attribute; returns what could be read and every error
    /// found.
    pub(crate) fn parse(tokens: TokenStream, kind: Kind) -> (Args, Vec<syn::Error>) {
        let mut args = Args::default();
        let mut errors = Vec::new();
        let raw = match syn::parse::Parser::parse2(
            Punctuated::<RawArg, Token![,]>::parse_terminated,
            tokens,
        ) {
            Ok(raw) => raw,
            Err(e) => return (args, vec![e]),
        };
        let mut seen: Vec<String> = Vec::new();
        for arg in raw {
            let key = arg.key.to_string();
            if seen.contains(&key) {
                errors.push(syn::Error::new(
                    arg.key.span(),
                    format!("duplicate argument `{key}`"),
                ));
                continue;
            }
            seen.push(key.clone());
            let span = arg.key.span();
            if !kind.accepts(&key) {
                errors.push(syn::Error::new(
                    span,
                    format!(
                        "unknown argument `{key}`; expected one of: {}",
                        kind.known()
                    ),
                ));
                continue;
            }
            let want_string = |what: &str| {
                syn::Error::new(
                    arg.value.as_ref().map_or(span, |v| v.span()),
                    format!("`{what}` takes a string literal: `{what} = \"…\"`"),
                )
            };
            let want_flag = |what: &str| {
                syn::Error::new(
                    span,
                    format!("`{what}` is a flag and takes no value: write `{what}`"),
                )
            };
            let string = |errors: &mut Vec<syn::Error>| -> Option<LitStr> {
                match (&arg.value, &arg.list) {
                    (Some(v), None) => match literal(v) {
                        Some(s) => Some(s),
                        None => {
                            errors.push(want_string(&key));
                            None
                        }
                    },
                    _ => {
                        errors.push(want_string(&key));
                        None
                    }
                }
            };
            let value = |errors: &mut Vec<syn::Error>| -> Option<Value> {
                match (&arg.value, &arg.list) {
                    (Some(v), None) => Some(match literal(v) {
                        Some(s) => Value::Literal(s),
                        None => Value::Expr(Box::new(v.clone())),
                    }),
                    _ => {
                        errors.push(syn::Error::new(
                            span,
                            format!(
                                "`{key}` takes a string literal or an expression: `{key} = \"…\"`"
                            ),
                        ));
                        None
                    }
                }
            };
            match key.as_str() {
                "model" => args.model = value(&mut errors),
                "provider" => args.provider = value(&mut errors),
                "operation" => {
                    args.operation = value(&mut errors);
                    if let Some(Value::Literal(operation)) = &args.operation
                        && matches!(operation.value().as_str(), "invoke_agent" | "create_agent")
                    {
                        errors.push(syn::Error::new(
                            operation.span(),
                            "an agent's operation is not an LLM call: put `#[agent]` on the function that runs the agent",
                        ));
                    }
                }
                "feature" => args.feature = value(&mut errors),
                "agent" => args.agent = value(&mut errors),
                "service_tier" => {
                    args.service_tier = value(&mut errors);
                    check_literal(&args.service_tier, &SERVICE_TIER, &mut errors);
                }
                "data_residency" => args.data_residency = value(&mut errors),
                "search_context_size" => {
                    args.search_context_size = value(&mut errors);
                    check_literal(&args.search_context_size, &SEARCH_CONTEXT_SIZE, &mut errors);
                }
                "id" => args.id = value(&mut errors),
                "user" => args.user = value(&mut errors),
                "org" => args.org = value(&mut errors),
                // An agent's name names its span too, when it is a literal.
                "name" if kind == Kind::Agent => {
                    args.agent = value(&mut errors);
                    if let Some(Value::Literal(name)) = &args.agent {
                        args.name = Some(name.clone());
                    }
                }
                "name" => args.name = string(&mut errors),
                "level" => {
                    if let Some(level) = string(&mut errors) {
                        match level_tokens(&level) {
                            Some(tokens) => args.level = Some((level, tokens)),
                            None => errors.push(syn::Error::new(
                                level.span(),
                                "unknown level: expected \"trace\", \"debug\", \"info\", \"warn\" or \"error\"",
                            )),
                        }
                    }
                }
                "fields" => match &arg.list {
                    Some(list) => args.fields = Some(list.clone()),
                    None => errors.push(syn::Error::new(
                        span,
                        "`fields` takes a list: `fields(key = value, …)`",
                    )),
                },
                "skip" => match &arg.list {
                    Some(list) => {
                        match syn::parse::Parser::parse2(
                            Punctuated::<Ident, Token![,]>::parse_terminated,
                            list.clone(),
                        ) {
                            Ok(names) => args.skip = names.into_iter().collect(),
                            Err(e) => errors.push(e),
                        }
                    }
                    None => errors.push(syn::Error::new(
                        span,
                        "`skip` takes a list of arguments: `skip(a, b)`",
                    )),
                },
                "skip_all" | "err" => {
                    if arg.value.is_some() || arg.list.is_some() {
                        errors.push(want_flag(&key));
                    } else if key == "err" {
                        args.err = true;
                    } else {
                        args.skip_all = true;
                    }
                }
                "max_output_tokens" | "estimate_input" | "max_web_searches" => {
                    match (&arg.value, &arg.list) {
                        (Some(v), None) if literal(v).is_none() => {
                            let slot = match key.as_str() {
                                "max_output_tokens" => &mut args.max_output_tokens,
                                "estimate_input" => &mut args.estimate_input,
                                _ => &mut args.max_web_searches,
                            };
                            *slot = Some(v.clone());
                        }
                        _ => errors.push(syn::Error::new(
                            arg.value.as_ref().map_or(span, |v| v.span()),
                            format!("`{key}` takes a token count: `{key} = 1024` or an expression"),
                        )),
                    }
                }
                "billed_on_err" => match (&arg.value, &arg.list) {
                    (Some(predicate), None) if literal(predicate).is_none() => {
                        args.billed_on_err = Some(predicate.clone());
                    }
                    _ => errors.push(syn::Error::new(
                        arg.value.as_ref().map_or(span, |v| v.span()),
                        "`billed_on_err` takes a predicate over the error: `billed_on_err = |e| e.is_timeout()` or a fn's path",
                    )),
                },
                "crate" => match &arg.value {
                    Some(Expr::Path(p)) => args.krate = Some(p.path.clone()),
                    _ => errors.push(syn::Error::new(
                        span,
                        "`crate` takes a path: `crate = my_crate::cost_layer`",
                    )),
                },
                _ => errors.push(syn::Error::new(
                    span,
                    format!(
                        "unknown argument `{key}`; expected one of: {}",
                        kind.known()
                    ),
                )),
            }
        }
        if kind == Kind::Session && args.id.is_none() && !seen.iter().any(|key| key == "id") {
            errors.push(syn::Error::new(
                Span::call_site(),
                "`#[session]` needs the session's id: `#[session(id = …)]` (a literal or an expression over the arguments)",
            ));
        }
        if let Some(max) = &args.max_output_tokens
            && args.model.is_none()
        {
            errors.push(syn::Error::new(
                max.span(),
                "`max_output_tokens` reserves the call's worst-case cost, which needs the model's prices: add `model = …`",
            ));
        }
        for (key, given) in [
            ("estimate_input", &args.estimate_input),
            ("max_web_searches", &args.max_web_searches),
        ] {
            if let (Some(given), None) = (given, &args.max_output_tokens) {
                errors.push(syn::Error::new(
                    given.span(),
                    format!(
                        "`{key}` is used with `max_output_tokens`: add `max_output_tokens = …`"
                    ),
                ));
            }
        }
        (args, errors)
    }

    /// The runtime crate's path, as tokens.
    pub(crate) fn krate(&self) -> TokenStream {
        match &self.krate {
            Some(path) => quote::quote!(#path),
            None => quote::quote!(::cost_layer),
        }
    }
}

fn level_tokens(level: &LitStr) -> Option<TokenStream> {
    let name = match level.value().to_ascii_lowercase().as_str() {
        "trace" => "TRACE",
        "debug" => "DEBUG",
        "info" => "INFO",
        "warn" => "WARN",
        "error" => "ERROR",
        _ => return None,
    };
    let ident = Ident::new(name, Span::call_site());
    Some(quote::quote!(#ident))
}
