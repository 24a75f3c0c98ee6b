//! The expansions of `#[llm_call]`, `#[agent]` and `#[session]`: one function wrapper (sync,
//! async, `#[async_trait]`), with the span each opens and, for a call, the budget reservation
//! and the recording of the usage its return value carries.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Block, Expr, FnArg, ItemFn, Pat, ReturnType, Stmt};

use crate::args::{Args, Kind, Value};

/// Instruments `item` as the `kind` attribute with `args` says.
pub(crate) fn instrument(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let attribute = kind.attribute();
    let (args, mut errors) = Args::parse(args, kind);
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(_) => {
            let at = item
                .clone()
                .into_iter()
                .next()
                .map_or_else(proc_macro2::Span::call_site, |t| t.span());
            errors.push(syn::Error::new(
                at,
                format!("`#[{attribute}]` applies to a function with a body (a free fn, a method, or a trait method with a default body)"),
            ));
            return with_errors(item, errors);
        }
    };
    if let Some(constness) = &func.sig.constness {
        errors.push(syn::Error::new(
            constness.span,
            format!("`#[{attribute}]` cannot instrument a `const fn`: recording a span is not possible in a const context"),
        ));
    }
    let params = parameter_names(&func);
    for skipped in &args.skip {
        if !params.iter().any(|p| skipped == p) {
            errors.push(syn::Error::new(
                skipped.span(),
                format!(
                    "`skip({skipped})`: `{}` has no argument named `{skipped}`",
                    func.sig.ident
                ),
            ));
        }
    }
    if !errors.is_empty() {
        return with_errors(item, errors);
    }
    expand(kind, &args, func)
}

/// The user's item unchanged, followed by the errors: the rest of the crate (and the IDE) keep
/// seeing the function.
fn with_errors(item: TokenStream, errors: Vec<syn::Error>) -> TokenStream {
    let errors = errors.into_iter().map(|e| e.to_compile_error());
    quote!(#item #(#errors)*)
}

fn parameter_names(func: &ItemFn) -> Vec<String> {
    func.sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Receiver(_) => Some("self".to_owned()),
            FnArg::Typed(typed) => match &*typed.pat {
                Pat::Ident(ident) => Some(ident.ident.to_string()),
                _ => None,
            },
        })
        .collect()
}

/// `Some(type)` when the return type can be written inside the body (no `impl Trait`, no
/// elided lifetimes), to guide inference of `?` in the instrumented body.
fn nameable_return(output: &ReturnType) -> Option<TokenStream> {
    match output {
        ReturnType::Default => Some(quote!(())),
        ReturnType::Type(_, ty) => {
            let text = ty.to_token_stream().to_string();
            let nameable = !text.contains("impl") && !text.contains('&') && !text.contains("'_");
            nameable.then(|| ty.to_token_stream())
        }
    }
}

fn expand(kind: Kind, args: &Args, func: ItemFn) -> TokenStream {
    let krate = args.krate();
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let name = span_name(args, &sig.ident);
    // A call declares its fields once (`__COST_FIELDS`), may reserve, and records its usage on
    // return; an agent run or a session only opens its span.
    let (span_expr, fields_static, reserve, record) = match kind {
        Kind::Call => (
            span_tokens(args, &krate, &sig.ident),
            {
                let bindings = call_bindings(args);
                quote! {
                    static __COST_FIELDS: #krate::__private::CallFields = #krate::__private::CallFields::new(#name);
                    #bindings
                }
            },
            reserve_tokens(
                args,
                &krate,
                sig.asyncness.is_some() || async_trait_body(&block).is_some(),
            ),
            record_tokens(args, &krate),
        ),
        Kind::Agent | Kind::Session => (
            scope_span_tokens(kind, args, &krate, &sig.ident),
            TokenStream::new(),
            TokenStream::new(),
            TokenStream::new(),
        ),
    };
    let hint = nameable_return(&sig.output);
    let let_result = match &hint {
        Some(ty) => quote!(let __cost_result: #ty),
        None => quote!(let __cost_result),
    };
    // A call that reserves and can be cancelled in flight (an async fn's future dropped before
    // it returns) says so at its close, for its budget settlement.
    let (in_flight, finished) = if reserve.is_empty() {
        (TokenStream::new(), TokenStream::new())
    } else {
        (
            quote!(let __cost_in_flight = #krate::__private::CallInFlight::new(&__cost_span);),
            quote!(__cost_in_flight.finish();),
        )
    };
    let body = if sig.asyncness.is_some() {
        quote! {
            #fields_static
            let __cost_span = #span_expr;
            #reserve
            #in_flight
            #let_result = #krate::__private::Instrument::instrument(
                async move #block,
                ::core::clone::Clone::clone(&__cost_span),
            )
            .await;
            #finished
            #record
            __cost_result
        }
    } else if let Some((before, inner)) = async_trait_body(&block) {
        // `#[async_trait]` turned the method into `Box::pin(async move { … })`: instrument the
        // future it returns, so the span covers the polls, not the construction.
        quote! {
            #(#before)*
            ::std::boxed::Box::pin(async move {
                #fields_static
                let __cost_span = #span_expr;
                #reserve
                #in_flight
                let __cost_result = #krate::__private::Instrument::instrument(
                    #inner,
                    ::core::clone::Clone::clone(&__cost_span),
                )
                .await;
                #finished
                #record
                __cost_result
            })
        }
    } else {
        let closure = match &hint {
            Some(ty) => quote!(move || -> #ty #block),
            None => quote!(move || #block),
        };
        quote! {
            #fields_static
            let __cost_span = #span_expr;
            #reserve
            #let_result = {
                let __cost_entered = __cost_span.enter();
                #[allow(clippy::redundant_closure_call)]
                (#closure)()
            };
            #record
            __cost_result
        }
    };
    quote! {
        #(#attrs)*
        #vis #sig {
            #body
        }
    }
}

/// The span's name: `name = "…"`, else the function's.
fn span_name(args: &Args, ident: &syn::Ident) -> syn::LitStr {
    match &args.name {
        Some(name) => name.clone(),
        None => syn::LitStr::new(&ident.to_string(), ident.span()),
    }
}

/// A span field's value: a literal as it is, an expression recorded with `Display`, else
/// `absent`.
fn field_value(value: &Option<Value>, absent: &TokenStream) -> TokenStream {
    match value {
        Some(Value::Literal(lit)) => quote!(#lit),
        Some(Value::Expr(expr)) => quote!(%(#expr)),
        None => absent.clone(),
    }
}

/// The span's level: `level = "…"`, else `INFO`.
fn span_level(args: &Args, krate: &TokenStream) -> TokenStream {
    match &args.level {
        Some((_, level)) => quote!(#krate::__private::tracing::Level::#level),
        None => quote!(#krate::__private::tracing::Level::INFO),
    }
}

/// A call's model and operation given as expressions, each evaluated once, before the span
/// opens, into a binding the span's fields (`gen_ai.request.model`, `otel.name`) and the
/// budget reservation read.
fn call_bindings(args: &Args) -> TokenStream {
    let bind = |value: &Option<Value>, binding: TokenStream| match value {
        Some(Value::Expr(expr)) => quote!(let #binding = &(#expr);),
        _ => TokenStream::new(),
    };
    let model = bind(&args.model, quote!(__cost_model));
    let operation = bind(&args.operation, quote!(__cost_operation));
    quote!(#model #operation)
}

/// A call's model or operation as a span field's value: a literal as it is, an expression
/// through its binding (`call_bindings`), else `absent`.
fn bound_value(value: &Option<Value>, binding: TokenStream, absent: &TokenStream) -> TokenStream {
    match value {
        Some(Value::Literal(lit)) => quote!(#lit),
        Some(Value::Expr(_)) => quote!(%#binding),
        None => absent.clone(),
    }
}

/// The call's OpenTelemetry span name (`otel.name`, read by `tracing-opentelemetry`), as the
/// GenAI conventions name an inference span: `{operation} {model}`, the operation alone when
/// the call site names no model. A literal when both are; `Empty` when `name = "…"` names the
/// span itself.
fn call_otel_name(args: &Args, empty: &TokenStream) -> TokenStream {
    if args.name.is_some() {
        return empty.clone();
    }
    let Some(model) = &args.model else {
        return bound_value(
            &args.operation,
            quote!(__cost_operation),
            &quote!(#DEFAULT_OPERATION),
        );
    };
    match (&args.operation, model) {
        // Both literals (the default operation is one): the name is a literal too.
        (None | Some(Value::Literal(_)), Value::Literal(model)) => {
            let operation = match &args.operation {
                Some(Value::Literal(lit)) => lit.value(),
                _ => DEFAULT_OPERATION.to_owned(),
            };
            let name = syn::LitStr::new(&format!("{operation} {}", model.value()), model.span());
            quote!(#name)
        }
        // Each part as `format_args!` takes it: a literal, or the expression's binding.
        (operation, model) => {
            let operation = match operation {
                Some(Value::Literal(lit)) => quote!(#lit),
                Some(Value::Expr(_)) => quote!(__cost_operation),
                None => quote!(#DEFAULT_OPERATION),
            };
            let model = match model {
                Value::Literal(lit) => quote!(#lit),
                Value::Expr(_) => quote!(__cost_model),
            };
            quote!(%::core::format_args!("{} {}", #operation, #model))
        }
    }
}

/// A call's `gen_ai.operation.name` when the call site gives none.
const DEFAULT_OPERATION: &str = "chat";

fn span_tokens(args: &Args, krate: &TokenStream, ident: &syn::Ident) -> TokenStream {
    let empty = quote!(#krate::__private::tracing::field::Empty);
    let value_or_empty = |value: &Option<Value>| field_value(value, &empty);
    let name = span_name(args, ident);
    let level = span_level(args, krate);
    let model = bound_value(&args.model, quote!(__cost_model), &empty);
    let provider = value_or_empty(&args.provider);
    let operation = bound_value(
        &args.operation,
        quote!(__cost_operation),
        &quote!(#DEFAULT_OPERATION),
    );
    let otel_name = call_otel_name(args, &empty);
    let feature = value_or_empty(&args.feature);
    let agent = value_or_empty(&args.agent);
    let service_tier = value_or_empty(&args.service_tier);
    let data_residency = value_or_empty(&args.data_residency);
    let search_context_size = value_or_empty(&args.search_context_size);
    let fields = args.fields.clone().unwrap_or_default();
    quote! {
        #krate::__llm_call_span!(
            krate = [#krate],
            level = #level,
            name = #name,
            model = [#model],
            provider = [#provider],
            operation = [#operation],
            otel_name = [#otel_name],
            feature = [#feature],
            agent = [#agent],
            service_tier = [#service_tier],
            data_residency = [#data_residency],
            search_context_size = [#search_context_size],
            fields = [#fields]
        )
    }
}

/// The span of an agent run (`gen_ai.agent.name`: `name = …`, else the function's name) or of
/// a session (`session.id`), with the attribution given.
fn scope_span_tokens(
    kind: Kind,
    args: &Args,
    krate: &TokenStream,
    ident: &syn::Ident,
) -> TokenStream {
    let empty = quote!(#krate::__private::tracing::field::Empty);
    let name = span_name(args, ident);
    let level = span_level(args, krate);
    let feature = field_value(&args.feature, &empty);
    let user = field_value(&args.user, &empty);
    let org = field_value(&args.org, &empty);
    let fields = args.fields.clone().unwrap_or_default();
    let span = |scope: TokenStream, key: TokenStream, otel_name: TokenStream| {
        quote! {
            #krate::__scope_span!(
                krate = [#krate],
                level = #level,
                name = #name,
                scope = #scope,
                key = [#key],
                otel_name = [#otel_name],
                feature = [#feature],
                user = [#user],
                org = [#org],
                fields = [#fields]
            )
        }
    };
    // An agent run's OpenTelemetry span is named `invoke_agent {name}`, as the GenAI
    // conventions name it (`otel.name`, read by `tracing-opentelemetry`).
    let invoke = |name: &syn::LitStr| {
        syn::LitStr::new(&format!("invoke_agent {}", name.value()), name.span())
    };
    match (kind, &args.agent) {
        (Kind::Session, _) => span(quote!(session), field_value(&args.id, &empty), empty),
        (_, None) => {
            let own_name = syn::LitStr::new(&ident.to_string(), ident.span());
            let otel_name = invoke(&own_name);
            span(quote!(agent), quote!(#own_name), quote!(#otel_name))
        }
        (_, Some(Value::Literal(lit))) => {
            let otel_name = invoke(lit);
            span(quote!(agent), quote!(#lit), quote!(#otel_name))
        }
        // The name evaluated once, for both fields.
        (_, Some(Value::Expr(expr))) => {
            let inner = span(
                quote!(agent),
                quote!(%__cost_agent_name),
                quote!(%::core::format_args!("invoke_agent {}", __cost_agent_name)),
            );
            quote! {{
                let __cost_agent_name = &(#expr);
                #inner
            }}
        }
    }
}

/// With `max_output_tokens`: reserve the worst case before the body runs, or return the
/// refusal. In an async fn (`asynchronous`) the reservation is awaited: a shared budget's
/// round trip to its store does not hold the executor's thread.
fn reserve_tokens(args: &Args, krate: &TokenStream, asynchronous: bool) -> TokenStream {
    let Some(max) = &args.max_output_tokens else {
        return TokenStream::new();
    };
    let model = match &args.model {
        Some(Value::Literal(lit)) => quote!(#lit),
        Some(Value::Expr(_)) => quote!(&::std::string::ToString::to_string(__cost_model)),
        None => return TokenStream::new(),
    };
    let count = |given: &Option<syn::Expr>| match given {
        Some(expr) => quote!((#expr) as u64),
        None => quote!(0_u64),
    };
    let (estimate, searches) = (count(&args.estimate_input), count(&args.max_web_searches));
    let bound = quote! {
        &#krate::__private::CallBound {
            input: #estimate,
            max_output: (#max) as u64,
            max_web_searches: #searches,
        }
    };
    let reserved = if asynchronous {
        quote!(#krate::__private::reserve_within_async(&__cost_span, #model, #bound).await)
    } else {
        quote!(__cost_span.in_scope(|| #krate::__private::reserve_within(#model, #bound)))
    };
    quote! {
        if let ::core::result::Result::Err(__cost_refused) = #reserved {
            return <_ as #krate::__private::BudgetReturn>::refused(__cost_refused);
        }
    }
}

fn record_tokens(args: &Args, krate: &TokenStream) -> TokenStream {
    let error = args.err.then(
        || quote!(#krate::__private::record_error(&__cost_span, &__COST_FIELDS, &__cost_result);),
    );
    // Spanned on the predicate: a fn that does not return a `Result`, or a predicate of the
    // wrong type, is reported there.
    let billed = args.billed_on_err.as_ref().map(|predicate| {
        quote_spanned! {predicate.span()=>
            #krate::__private::settle_err_as_cancelled(&__cost_span, &__cost_result, #predicate);
        }
    });
    quote! {
        #krate::__private::record_return(&__cost_span, &__COST_FIELDS, &__cost_result);
        #error
        #billed
    }
}

/// For a body of the form `…; Box::pin(async move { … })`, the statements before it and the
/// async block.
fn async_trait_body(block: &Block) -> Option<(Vec<Stmt>, Expr)> {
    let (last, before) = block.stmts.split_last()?;
    let Stmt::Expr(Expr::Call(call), None) = last else {
        return None;
    };
    let Expr::Path(path) = &*call.func else {
        return None;
    };
    let segments: Vec<String> = path
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    if !segments.ends_with(&["Box".to_owned(), "pin".to_owned()]) || call.args.len() != 1 {
        return None;
    }
    match call.args.first() {
        Some(Expr::Async(inner)) => Some((before.to_vec(), Expr::Async(inner.clone()))),
        _ => None,
    }
}
