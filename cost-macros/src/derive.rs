//! `#[derive(TokenUsage)]`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, LitStr, Path};

const KINDS: [&str; 16] = [
    "input",
    "cache_read",
    "cache_write",
    "cache_write_1h",
    "output",
    "reasoning",
    "audio_input",
    "audio_output",
    "cache_read_audio",
    "image_output",
    "web_search_requests",
    "image_input",
    "cache_read_image",
    "file_search_calls",
    "image_generation_calls",
    "code_interpreter_sessions",
];

enum Role {
    Count(&'static str),
    Model,
    ServiceTier,
    DataResidency,
    SearchContextSize,
    ReportedCost,
    Flatten,
}

pub(crate) fn token_usage(input: TokenStream) -> TokenStream {
    let input: DeriveInput = match syn::parse2(input) {
        Ok(input) => input,
        Err(e) => return e.to_compile_error(),
    };
    let mut errors: Vec<syn::Error> = Vec::new();
    let mut krate: Option<Path> = None;
    let mut convention: (bool, bool) = (false, false);
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("usage")) {
        let outcome = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("convention") {
                let value: LitStr = meta.value()?.parse()?;
                convention = match value.value().as_str() {
                    "inclusive" | "openai" => (false, false),
                    "anthropic" => (true, false),
                    "gemini" => (false, true),
                    other => {
                        return Err(syn::Error::new(
                            value.span(),
                            format!("unknown convention `{other}`; expected \"inclusive\", \"openai\", \"anthropic\" or \"gemini\""),
                        ));
                    }
                };
                Ok(())
            } else if meta.path.is_ident("crate") {
                krate = Some(meta.value()?.parse()?);
                Ok(())
            } else {
                Err(meta.error("unknown container attribute; expected `convention = \"…\"` or `crate = path`"))
            }
        });
        if let Err(e) = outcome {
            errors.push(e);
        }
    }
    let krate_path = match krate {
        Some(path) => quote!(#path),
        None => quote!(::cost_layer),
    };
    let fields = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(named) => named.named.iter().collect::<Vec<_>>(),
            Fields::Unnamed(unnamed) => unnamed.unnamed.iter().collect(),
            Fields::Unit => Vec::new(),
        },
        Data::Enum(e) => {
            errors.push(syn::Error::new(
                e.enum_token.span,
                "`#[derive(TokenUsage)]` supports structs only; implement `TokenUsage` by hand for an enum",
            ));
            Vec::new()
        }
        Data::Union(u) => {
            errors.push(syn::Error::new(
                u.union_token.span,
                "`#[derive(TokenUsage)]` supports structs only",
            ));
            Vec::new()
        }
    };
    let mut counts = Vec::new();
    let mut model = None;
    let mut service_tier = None;
    let mut data_residency = None;
    let mut search_context_size = None;
    let mut reported_cost = None;
    let mut flatten = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for (index, field) in fields.iter().enumerate() {
        let access = match &field.ident {
            Some(ident) => quote!(self.#ident),
            None => {
                let index = syn::Index::from(index);
                quote!(self.#index)
            }
        };
        for attr in field.attrs.iter().filter(|a| a.path().is_ident("usage")) {
            let outcome = attr.parse_nested_meta(|meta| {
                let Some(ident) = meta.path.get_ident() else {
                    return Err(meta.error("expected a usage kind"));
                };
                let name = ident.to_string();
                let role = if let Some(kind) = KINDS.iter().find(|k| **k == name) {
                    Role::Count(kind)
                } else if name == "model" {
                    Role::Model
                } else if name == "service_tier" {
                    Role::ServiceTier
                } else if name == "data_residency" {
                    Role::DataResidency
                } else if name == "search_context_size" {
                    Role::SearchContextSize
                } else if name == "reported_cost" {
                    Role::ReportedCost
                } else if name == "flatten" {
                    Role::Flatten
                } else {
                    return Err(meta.error(format!(
                        "unknown usage kind `{name}`; expected one of: input, output, cache_read, cache_write, cache_write_1h, reasoning, audio_input, audio_output, cache_read_audio, image_output, web_search_requests, image_input, cache_read_image, file_search_calls, image_generation_calls, code_interpreter_sessions, model, service_tier, data_residency, search_context_size, reported_cost, flatten"
                    )));
                };
                if name != "flatten" {
                    if seen.contains(&name) {
                        return Err(meta.error(format!("two fields are marked `#[usage({name})]`")));
                    }
                    seen.push(name.clone());
                }
                match role {
                    Role::Count(kind) => {
                        let slot = syn::Ident::new(kind, ident.span());
                        let ty = &field.ty;
                        counts.push(quote_spanned!(ty.span()=> usage.#slot = <#ty as #krate_path::__private::TokenCount>::token_count(&#access);));
                    }
                    Role::Model => {
                        let ty = &field.ty;
                        model = Some(quote_spanned!(ty.span()=> <#ty as #krate_path::__private::UsageText>::usage_text(&#access)));
                    }
                    Role::ServiceTier => {
                        let ty = &field.ty;
                        service_tier = Some(quote_spanned!(ty.span()=> <#ty as #krate_path::__private::UsageText>::usage_text(&#access)));
                    }
                    Role::DataResidency => {
                        let ty = &field.ty;
                        data_residency = Some(quote_spanned!(ty.span()=> <#ty as #krate_path::__private::UsageFlag>::usage_flag(&#access)));
                    }
                    Role::SearchContextSize => {
                        let ty = &field.ty;
                        search_context_size = Some(quote_spanned!(ty.span()=> <#ty as #krate_path::__private::UsageText>::usage_text(&#access)));
                    }
                    Role::ReportedCost => {
                        let ty = &field.ty;
                        reported_cost = Some(quote_spanned!(ty.span()=> <#ty as #krate_path::__private::UsageCost>::usage_cost(&#access)));
                    }
                    Role::Flatten => flatten.push(access.clone()),
                }
                Ok(())
            });
            if let Err(e) = outcome {
                errors.push(e);
            }
        }
    }
    if !errors.is_empty() {
        let errors = errors.into_iter().map(|e| e.to_compile_error());
        return quote!(#(#errors)*);
    }
    let (input_excludes_cache, output_excludes_reasoning) = convention;
    let name = &input.ident;
    let (impl_generics, type_generics, where_clause) = input.generics.split_for_impl();
    let flatten_usage = flatten.iter().map(|access| {
        quote! {
            if let ::core::option::Option::Some(inner) = #krate_path::__private::TokenUsage::token_usage(&#access) {
                usage = usage.saturating_add(inner);
            }
        }
    });
    let flatten_models = flatten.iter().map(
        |access| quote!(.or_else(|| #krate_path::__private::TokenUsage::response_model(&#access))),
    );
    let flatten_tiers = flatten.iter().map(
        |access| quote!(.or_else(|| #krate_path::__private::TokenUsage::service_tier(&#access))),
    );
    let flatten_residencies = flatten.iter().map(
        |access| quote!(.or_else(|| #krate_path::__private::TokenUsage::data_residency(&#access))),
    );
    let flatten_search_sizes = flatten.iter().map(
        |access| quote!(.or_else(|| #krate_path::__private::TokenUsage::search_context_size(&#access))),
    );
    let flatten_reported_costs = flatten.iter().map(
        |access| quote!(.or_else(|| #krate_path::__private::TokenUsage::reported_cost(&#access))),
    );
    let reported_cost = reported_cost.unwrap_or_else(|| quote!(::core::option::Option::None));
    let model = model.unwrap_or_else(|| quote!(::core::option::Option::None));
    let service_tier = service_tier.unwrap_or_else(|| quote!(::core::option::Option::None));
    let data_residency = data_residency.unwrap_or_else(|| quote!(::core::option::Option::None));
    let search_context_size =
        search_context_size.unwrap_or_else(|| quote!(::core::option::Option::None));
    let expanded = quote! {
        impl #impl_generics #krate_path::__private::TokenUsage for #name #type_generics #where_clause {
            fn token_usage(&self) -> ::core::option::Option<#krate_path::__private::Usage> {
                let mut usage = #krate_path::__private::Usage::default();
                #(#counts)*
                let mut usage = #krate_path::__private::from_convention(
                    usage,
                    #input_excludes_cache,
                    #output_excludes_reasoning,
                );
                #(#flatten_usage)*
                ::core::option::Option::Some(usage)
            }

            fn response_model(&self) -> ::core::option::Option<&str> {
                #model #(#flatten_models)*
            }

            fn service_tier(&self) -> ::core::option::Option<&str> {
                #service_tier #(#flatten_tiers)*
            }

            fn data_residency(&self) -> ::core::option::Option<bool> {
                #data_residency #(#flatten_residencies)*
            }

            fn search_context_size(&self) -> ::core::option::Option<&str> {
                #search_context_size #(#flatten_search_sizes)*
            }

            fn reported_cost(&self) -> ::core::option::Option<#krate_path::__private::Money> {
                #reported_cost #(#flatten_reported_costs)*
            }
        }
    };
    expanded
}
