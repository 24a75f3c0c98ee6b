//! Token usage of one call, in the inclusive convention of OpenTelemetry GenAI.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The most tokens one call may report for any kind: 10⁹. Larger counts are not real usage
/// (the largest context windows hold about 10⁷ tokens: this leaves a hundredfold margin) and
/// are rejected as [`UsageError::Absurd`] rather than priced: a garbage count would otherwise
/// be charged as real money.
pub const MAX_TOKENS_PER_CALL: u64 = 1_000_000_000;

/// The most web searches one call may report: 10⁴. An agent's turn runs a handful (Anthropic's
/// tool stops at the `max_uses` the request sets); more is not real usage and is rejected as
/// [`UsageError::Absurd`], as a garbage token count is: at $10 per thousand searches a count
/// of 10⁹ would be charged as ten million dollars.
pub const MAX_WEB_SEARCHES_PER_CALL: u64 = 10_000;

/// The most file search tool calls one call may report: 10⁴, as for web searches (OpenAI's
/// `max_tool_calls` bounds them per response); more is rejected as [`UsageError::Absurd`].
pub const MAX_FILE_SEARCHES_PER_CALL: u64 = 10_000;

/// The most images the hosted image generation tool, or code interpreter sessions, one call may
/// report: 10⁴, as for web searches; more is rejected as [`UsageError::Absurd`].
pub const MAX_HOSTED_TOOL_USES_PER_CALL: u64 = 10_000;

/// Token counts of one LLM call.
///
/// Inclusive convention: `input` counts every prompt token, cache reads and cache writes
/// included; `output` counts every completion token, reasoning included. The cache, audio and
/// reasoning fields say how many of those tokens were of that kind. Provider adapters convert
/// native shapes (Anthropic's exclusive `input_tokens`, for one) into this.
///
/// Audio tokens (OpenAI's `audio_tokens`, Gemini's `AUDIO` modality) cost several times text
/// tokens on some models: `audio_input` counts the audio prompt tokens *not* read from the
/// cache, `cache_read_audio` the audio ones read from it (part of `cache_read`: some models
/// price a cached audio token above a cached text one), and `audio_output` the audio completion
/// tokens (never reasoning). `image_output` counts the completion tokens of generated images
/// (Gemini's `IMAGE` modality, OpenAI's image models), priced apart too. `image_input` and
/// `cache_read_image` count the prompt tokens of images, not read from the cache and read from
/// it (OpenAI's image and realtime models price them above text; most models bill an image
/// prompt as text, and declare no image price). Text tokens are the rest.
///
/// `web_search_requests` is not a token count: it counts the web searches the provider ran
/// for the call (Anthropic's `server_tool_use.web_search_requests`, OpenAI's web search tool
/// calls), which are billed per search on top of the tokens. `file_search_calls` counts the
/// hosted file search tool's calls (OpenAI's `file_search_call` items), billed per call the
/// same way. `image_generation_calls` counts the images the hosted image generation tool made
/// (OpenAI's `image_generation_call` items), billed per image on top of the response's tokens
/// (which do not include the image's); `code_interpreter_sessions` counts the code interpreter
/// containers the call ran code in (OpenAI's `code_interpreter_call` items, one per distinct
/// container), billed per session. None of these is part of [`Usage::total_tokens`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Usage {
    /// Every prompt token, cache reads and cache writes included.
    pub input: u64,
    /// Prompt tokens read from the provider's prompt cache.
    pub cache_read: u64,
    /// Prompt tokens written to the provider's prompt cache with the default (5-minute) lifetime.
    pub cache_write: u64,
    /// Prompt tokens written to the provider's prompt cache with a 1-hour lifetime.
    pub cache_write_1h: u64,
    /// Every completion token, reasoning included.
    pub output: u64,
    /// Completion tokens spent on reasoning.
    pub reasoning: u64,
    /// Prompt tokens of audio, not read from or written to the cache.
    pub audio_input: u64,
    /// Completion tokens of audio.
    pub audio_output: u64,
    /// Prompt tokens of audio read from the cache (part of `cache_read`).
    pub cache_read_audio: u64,
    /// Completion tokens of generated images.
    pub image_output: u64,
    /// Web searches the provider ran for the call, billed per search (not tokens).
    pub web_search_requests: u64,
    /// Prompt tokens of images, not read from or written to the cache.
    pub image_input: u64,
    /// Prompt tokens of images read from the cache (part of `cache_read`).
    pub cache_read_image: u64,
    /// File search tool calls the provider ran for the call, billed per call (not tokens).
    pub file_search_calls: u64,
    /// Images the hosted image generation tool made for the call, billed per image (not tokens).
    pub image_generation_calls: u64,
    /// Code interpreter sessions (containers) the call ran code in, billed per session.
    pub code_interpreter_sessions: u64,
}

/// Which field of a [`Usage`] a problem is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// [`Usage::input`].
    Input,
    /// [`Usage::cache_read`].
    CacheRead,
    /// [`Usage::cache_write`].
    CacheWrite,
    /// [`Usage::cache_write_1h`].
    CacheWrite1h,
    /// [`Usage::output`].
    Output,
    /// [`Usage::reasoning`].
    Reasoning,
    /// [`Usage::audio_input`].
    AudioInput,
    /// [`Usage::audio_output`].
    AudioOutput,
    /// [`Usage::cache_read_audio`].
    CacheReadAudio,
    /// [`Usage::image_output`].
    ImageOutput,
    /// [`Usage::web_search_requests`]: counted in searches, not tokens.
    WebSearchRequests,
    /// [`Usage::image_input`].
    ImageInput,
    /// [`Usage::cache_read_image`].
    CacheReadImage,
    /// [`Usage::file_search_calls`]: counted in calls, not tokens.
    FileSearchCalls,
    /// [`Usage::image_generation_calls`]: counted in images, not tokens.
    ImageGenerationCalls,
    /// [`Usage::code_interpreter_sessions`]: counted in sessions, not tokens.
    CodeInterpreterSessions,
}

impl TokenKind {
    /// Every kind, in the order of [`Usage`]'s fields.
    pub const ALL: [TokenKind; 16] = [
        TokenKind::Input,
        TokenKind::CacheRead,
        TokenKind::CacheWrite,
        TokenKind::CacheWrite1h,
        TokenKind::Output,
        TokenKind::Reasoning,
        TokenKind::AudioInput,
        TokenKind::AudioOutput,
        TokenKind::CacheReadAudio,
        TokenKind::ImageOutput,
        TokenKind::WebSearchRequests,
        TokenKind::ImageInput,
        TokenKind::CacheReadImage,
        TokenKind::FileSearchCalls,
        TokenKind::ImageGenerationCalls,
        TokenKind::CodeInterpreterSessions,
    ];

    /// The snake_case name used in files and output (`cache_write_1h`).
    pub const fn as_str(self) -> &'static str {
        match self {
            TokenKind::Input => "input",
            TokenKind::CacheRead => "cache_read",
            TokenKind::CacheWrite => "cache_write",
            TokenKind::CacheWrite1h => "cache_write_1h",
            TokenKind::Output => "output",
            TokenKind::Reasoning => "reasoning",
            TokenKind::AudioInput => "audio_input",
            TokenKind::AudioOutput => "audio_output",
            TokenKind::CacheReadAudio => "cache_read_audio",
            TokenKind::ImageOutput => "image_output",
            TokenKind::WebSearchRequests => "web_search_requests",
            TokenKind::ImageInput => "image_input",
            TokenKind::CacheReadImage => "cache_read_image",
            TokenKind::FileSearchCalls => "file_search_calls",
            TokenKind::ImageGenerationCalls => "image_generation_calls",
            TokenKind::CodeInterpreterSessions => "code_interpreter_sessions",
        }
    }

    /// The most one call may report of this kind ([`MAX_TOKENS_PER_CALL`] tokens,
    /// [`MAX_WEB_SEARCHES_PER_CALL`] searches, [`MAX_FILE_SEARCHES_PER_CALL`] file search
    /// calls or [`MAX_HOSTED_TOOL_USES_PER_CALL`] generated images or code interpreter sessions).
    pub const fn max_per_call(self) -> u64 {
        match self {
            TokenKind::WebSearchRequests => MAX_WEB_SEARCHES_PER_CALL,
            TokenKind::FileSearchCalls => MAX_FILE_SEARCHES_PER_CALL,
            TokenKind::ImageGenerationCalls | TokenKind::CodeInterpreterSessions => {
                MAX_HOSTED_TOOL_USES_PER_CALL
            }
            _ => MAX_TOKENS_PER_CALL,
        }
    }

    /// `true` for the kinds counted in uses of a hosted tool (web searches, file search calls,
    /// generated images, code interpreter sessions) and priced per use, not per token.
    pub const fn is_per_use(self) -> bool {
        matches!(
            self,
            TokenKind::WebSearchRequests
                | TokenKind::FileSearchCalls
                | TokenKind::ImageGenerationCalls
                | TokenKind::CodeInterpreterSessions
        )
    }

    /// The unit the kind is counted in: `tokens`, `searches` for web searches, `calls` for
    /// file search calls, `images` for the image generation tool, `sessions` for code
    /// interpreter sessions.
    pub const fn unit(self) -> &'static str {
        match self {
            TokenKind::WebSearchRequests => "searches",
            TokenKind::FileSearchCalls => "calls",
            TokenKind::ImageGenerationCalls => "images",
            TokenKind::CodeInterpreterSessions => "sessions",
            _ => "tokens",
        }
    }
}

impl std::fmt::Display for TokenKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Usage whose counts contradict each other or are not real. Never priced.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum UsageError {
    /// Cache reads and writes are part of `input`, so together they cannot exceed it.
    #[error(
        "inconsistent usage: cache_read ({cache_read}) + cache_write ({cache_write}) + cache_write_1h ({cache_write_1h}) exceed input ({input}); input counts every prompt token, cached ones included"
    )]
    CacheExceedsInput {
        /// The reported input.
        input: u64,
        /// The reported cache reads.
        cache_read: u64,
        /// The reported 5-minute cache writes.
        cache_write: u64,
        /// The reported 1-hour cache writes.
        cache_write_1h: u64,
    },
    /// Reasoning tokens are part of `output`, so they cannot exceed it.
    #[error(
        "inconsistent usage: reasoning ({reasoning}) exceeds output ({output}); output counts every completion token, reasoning included"
    )]
    ReasoningExceedsOutput {
        /// The reported output.
        output: u64,
        /// The reported reasoning.
        reasoning: u64,
    },
    /// Uncached audio prompt tokens are part of `input`, apart from the cached ones.
    #[error(
        "inconsistent usage: audio_input ({audio_input}) + cache reads and writes ({cached}) exceed input ({input}); input counts every prompt token, audio and cached ones included"
    )]
    AudioExceedsInput {
        /// The reported input.
        input: u64,
        /// The reported uncached audio input.
        audio_input: u64,
        /// The reported cache reads and writes, together.
        cached: u64,
    },
    /// Audio and image completion tokens are part of `output`, apart from reasoning.
    #[error(
        "inconsistent usage: audio_output ({audio_output}) + image_output ({image_output}) + reasoning ({reasoning}) exceed output ({output}); output counts every completion token, audio, images and reasoning included"
    )]
    OutputPartsExceedOutput {
        /// The reported output.
        output: u64,
        /// The reported audio output.
        audio_output: u64,
        /// The reported image output.
        image_output: u64,
        /// The reported reasoning.
        reasoning: u64,
    },
    /// Uncached image prompt tokens are part of `input`, apart from the cached ones and from
    /// the uncached audio.
    #[error(
        "inconsistent usage: image_input ({image_input}) + audio_input ({audio_input}) + cache reads and writes ({cached}) exceed input ({input}); input counts every prompt token, images, audio and cached ones included"
    )]
    ImageExceedsInput {
        /// The reported input.
        input: u64,
        /// The reported uncached image input.
        image_input: u64,
        /// The reported uncached audio input.
        audio_input: u64,
        /// The reported cache reads and writes, together.
        cached: u64,
    },
    /// Cached image prompt tokens are part of the cache reads, apart from the cached audio.
    #[error(
        "inconsistent usage: cache_read_image ({cache_read_image}) + cache_read_audio ({cache_read_audio}) exceed cache_read ({cache_read}); cache_read counts every prompt token read from the cache, images and audio included"
    )]
    CachedImageExceedsCacheRead {
        /// The reported cache reads.
        cache_read: u64,
        /// The reported cached images.
        cache_read_image: u64,
        /// The reported cached audio.
        cache_read_audio: u64,
    },
    /// Cached audio prompt tokens are part of the cache reads.
    #[error(
        "inconsistent usage: cache_read_audio ({cache_read_audio}) exceeds cache_read ({cache_read}); cache_read counts every prompt token read from the cache, audio included"
    )]
    CachedAudioExceedsCacheRead {
        /// The reported cache reads.
        cache_read: u64,
        /// The reported cached audio.
        cache_read_audio: u64,
    },
    /// A count above its kind's limit ([`TokenKind::max_per_call`]).
    #[error(
        "absurd usage: {kind} = {value} {} is above the limit of {} for one call", kind.unit(), kind.max_per_call()
    )]
    Absurd {
        /// The field.
        kind: TokenKind,
        /// The reported count.
        value: u64,
    },
}

impl Usage {
    /// Usage with only prompt and completion tokens.
    pub const fn new(input: u64, output: u64) -> Self {
        Usage {
            input,
            output,
            cache_read: 0,
            cache_write: 0,
            cache_write_1h: 0,
            reasoning: 0,
            audio_input: 0,
            audio_output: 0,
            cache_read_audio: 0,
            image_output: 0,
            web_search_requests: 0,
            image_input: 0,
            cache_read_image: 0,
            file_search_calls: 0,
            image_generation_calls: 0,
            code_interpreter_sessions: 0,
        }
    }

    /// The count of one kind.
    pub const fn get(&self, kind: TokenKind) -> u64 {
        match kind {
            TokenKind::Input => self.input,
            TokenKind::CacheRead => self.cache_read,
            TokenKind::CacheWrite => self.cache_write,
            TokenKind::CacheWrite1h => self.cache_write_1h,
            TokenKind::Output => self.output,
            TokenKind::Reasoning => self.reasoning,
            TokenKind::AudioInput => self.audio_input,
            TokenKind::AudioOutput => self.audio_output,
            TokenKind::CacheReadAudio => self.cache_read_audio,
            TokenKind::ImageOutput => self.image_output,
            TokenKind::WebSearchRequests => self.web_search_requests,
            TokenKind::ImageInput => self.image_input,
            TokenKind::CacheReadImage => self.cache_read_image,
            TokenKind::FileSearchCalls => self.file_search_calls,
            TokenKind::ImageGenerationCalls => self.image_generation_calls,
            TokenKind::CodeInterpreterSessions => self.code_interpreter_sessions,
        }
    }

    /// Sets the count of one kind.
    pub fn set(&mut self, kind: TokenKind, value: u64) {
        match kind {
            TokenKind::Input => self.input = value,
            TokenKind::CacheRead => self.cache_read = value,
            TokenKind::CacheWrite => self.cache_write = value,
            TokenKind::CacheWrite1h => self.cache_write_1h = value,
            TokenKind::Output => self.output = value,
            TokenKind::Reasoning => self.reasoning = value,
            TokenKind::AudioInput => self.audio_input = value,
            TokenKind::AudioOutput => self.audio_output = value,
            TokenKind::CacheReadAudio => self.cache_read_audio = value,
            TokenKind::ImageOutput => self.image_output = value,
            TokenKind::WebSearchRequests => self.web_search_requests = value,
            TokenKind::ImageInput => self.image_input = value,
            TokenKind::CacheReadImage => self.cache_read_image = value,
            TokenKind::FileSearchCalls => self.file_search_calls = value,
            TokenKind::ImageGenerationCalls => self.image_generation_calls = value,
            TokenKind::CodeInterpreterSessions => self.code_interpreter_sessions = value,
        }
    }

    /// Checks that the counts are real and consistent with the inclusive convention.
    pub fn validate(&self) -> Result<(), UsageError> {
        // Every count against its limit, field by field (a loop over the kinds through `get`
        // took three times the instructions); which kind is absurd is only looked up once one is.
        let tokens = [
            self.input,
            self.cache_read,
            self.cache_write,
            self.cache_write_1h,
            self.output,
            self.reasoning,
            self.audio_input,
            self.audio_output,
            self.cache_read_audio,
            self.image_output,
            self.image_input,
            self.cache_read_image,
        ];
        let uses = [
            (self.web_search_requests, MAX_WEB_SEARCHES_PER_CALL),
            (self.file_search_calls, MAX_FILE_SEARCHES_PER_CALL),
            (self.image_generation_calls, MAX_HOSTED_TOOL_USES_PER_CALL),
            (
                self.code_interpreter_sessions,
                MAX_HOSTED_TOOL_USES_PER_CALL,
            ),
        ];
        let absurd = tokens
            .iter()
            .fold(false, |any, &n| any | (n > MAX_TOKENS_PER_CALL))
            | uses.iter().fold(false, |any, &(n, max)| any | (n > max));
        if absurd {
            for kind in TokenKind::ALL {
                let value = self.get(kind);
                if value > kind.max_per_call() {
                    return Err(UsageError::Absurd { kind, value });
                }
            }
        }
        // Each term is at most 10⁹, so the sum cannot overflow.
        if self.cache_read + self.cache_write + self.cache_write_1h > self.input {
            return Err(UsageError::CacheExceedsInput {
                input: self.input,
                cache_read: self.cache_read,
                cache_write: self.cache_write,
                cache_write_1h: self.cache_write_1h,
            });
        }
        if self.reasoning > self.output {
            return Err(UsageError::ReasoningExceedsOutput {
                output: self.output,
                reasoning: self.reasoning,
            });
        }
        let cached = self.cache_read + self.cache_write + self.cache_write_1h;
        if self.audio_input + cached > self.input {
            return Err(UsageError::AudioExceedsInput {
                input: self.input,
                audio_input: self.audio_input,
                cached,
            });
        }
        if self.image_input + self.audio_input + cached > self.input {
            return Err(UsageError::ImageExceedsInput {
                input: self.input,
                image_input: self.image_input,
                audio_input: self.audio_input,
                cached,
            });
        }
        if self.cache_read_audio > self.cache_read {
            return Err(UsageError::CachedAudioExceedsCacheRead {
                cache_read: self.cache_read,
                cache_read_audio: self.cache_read_audio,
            });
        }
        if self.cache_read_image + self.cache_read_audio > self.cache_read {
            return Err(UsageError::CachedImageExceedsCacheRead {
                cache_read: self.cache_read,
                cache_read_image: self.cache_read_image,
                cache_read_audio: self.cache_read_audio,
            });
        }
        if self.audio_output + self.image_output + self.reasoning > self.output {
            return Err(UsageError::OutputPartsExceedOutput {
                output: self.output,
                audio_output: self.audio_output,
                image_output: self.image_output,
                reasoning: self.reasoning,
            });
        }
        Ok(())
    }

    /// Prompt tokens of text that were neither read from nor written to the cache (uncached
    /// audio and images are apart, in `audio_input` and `image_input`). Saturates at zero on
    /// inconsistent usage; call [`Usage::validate`] first.
    pub const fn uncached_input(&self) -> u64 {
        self.input
            .saturating_sub(self.cache_read)
            .saturating_sub(self.cache_write)
            .saturating_sub(self.cache_write_1h)
            .saturating_sub(self.audio_input)
            .saturating_sub(self.image_input)
    }

    /// Completion tokens of text that were not reasoning. Saturates at zero on inconsistent
    /// usage.
    pub const fn visible_output(&self) -> u64 {
        self.output
            .saturating_sub(self.reasoning)
            .saturating_sub(self.audio_output)
            .saturating_sub(self.image_output)
    }

    /// `input + output`, every token of the call.
    pub const fn total_tokens(&self) -> u64 {
        self.input.saturating_add(self.output)
    }

    /// Field-by-field sum, saturating; for accumulating totals of many calls.
    pub const fn saturating_add(self, other: Usage) -> Usage {
        Usage {
            input: self.input.saturating_add(other.input),
            cache_read: self.cache_read.saturating_add(other.cache_read),
            cache_write: self.cache_write.saturating_add(other.cache_write),
            cache_write_1h: self.cache_write_1h.saturating_add(other.cache_write_1h),
            output: self.output.saturating_add(other.output),
            reasoning: self.reasoning.saturating_add(other.reasoning),
            audio_input: self.audio_input.saturating_add(other.audio_input),
            audio_output: self.audio_output.saturating_add(other.audio_output),
            cache_read_audio: self.cache_read_audio.saturating_add(other.cache_read_audio),
            image_output: self.image_output.saturating_add(other.image_output),
            web_search_requests: self
                .web_search_requests
                .saturating_add(other.web_search_requests),
            image_input: self.image_input.saturating_add(other.image_input),
            cache_read_image: self.cache_read_image.saturating_add(other.cache_read_image),
            file_search_calls: self
                .file_search_calls
                .saturating_add(other.file_search_calls),
            image_generation_calls: self
                .image_generation_calls
                .saturating_add(other.image_generation_calls),
            code_interpreter_sessions: self
                .code_interpreter_sessions
                .saturating_add(other.code_interpreter_sessions),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistent_usage_passes() {
        let usage = Usage {
            input: 100,
            cache_read: 50,
            cache_write: 30,
            cache_write_1h: 20,
            output: 10,
            reasoning: 10,
            ..Usage::default()
        };
        assert_eq!(usage.validate(), Ok(()));
        assert_eq!(usage.uncached_input(), 0);
        assert_eq!(usage.visible_output(), 0);
    }

    #[test]
    fn cache_beyond_input_is_rejected() {
        let usage = Usage {
            input: 100,
            cache_read: 50,
            cache_write: 30,
            cache_write_1h: 21,
            ..Usage::default()
        };
        assert!(matches!(
            usage.validate(),
            Err(UsageError::CacheExceedsInput { .. })
        ));
    }

    #[test]
    fn reasoning_beyond_output_is_rejected() {
        let usage = Usage {
            output: 5,
            reasoning: 6,
            ..Usage::default()
        };
        assert!(matches!(
            usage.validate(),
            Err(UsageError::ReasoningExceedsOutput {
                output: 5,
                reasoning: 6
            })
        ));
    }

    #[test]
    fn audio_is_apart_from_cached_input_and_from_reasoning() {
        let usage = Usage {
            input: 100,
            cache_read: 60,
            audio_input: 30,
            output: 50,
            reasoning: 20,
            audio_output: 25,
            ..Usage::default()
        };
        assert_eq!(usage.validate(), Ok(()));
        assert_eq!(usage.uncached_input(), 10);
        assert_eq!(usage.visible_output(), 5);
        let too_much_audio_in = Usage {
            audio_input: 41,
            ..usage
        };
        assert_eq!(
            too_much_audio_in.validate(),
            Err(UsageError::AudioExceedsInput {
                input: 100,
                audio_input: 41,
                cached: 60
            })
        );
        let cached_audio_beyond_the_cache = Usage {
            cache_read_audio: 61,
            ..usage
        };
        assert_eq!(
            cached_audio_beyond_the_cache.validate(),
            Err(UsageError::CachedAudioExceedsCacheRead {
                cache_read: 60,
                cache_read_audio: 61
            })
        );
        let too_much_audio_out = Usage {
            audio_output: 31,
            ..usage
        };
        assert_eq!(
            too_much_audio_out.validate(),
            Err(UsageError::OutputPartsExceedOutput {
                output: 50,
                audio_output: 31,
                image_output: 0,
                reasoning: 20
            })
        );
    }

    #[test]
    fn images_are_apart_from_audio_and_from_cached_input() {
        let usage = Usage {
            input: 100,
            cache_read: 60,
            cache_read_audio: 10,
            cache_read_image: 20,
            audio_input: 15,
            image_input: 20,
            ..Usage::default()
        };
        assert_eq!(usage.validate(), Ok(()));
        assert_eq!(usage.uncached_input(), 5);
        assert_eq!(
            Usage {
                image_input: 26,
                ..usage
            }
            .validate(),
            Err(UsageError::ImageExceedsInput {
                input: 100,
                image_input: 26,
                audio_input: 15,
                cached: 60
            })
        );
        assert_eq!(
            Usage {
                cache_read_image: 51,
                ..usage
            }
            .validate(),
            Err(UsageError::CachedImageExceedsCacheRead {
                cache_read: 60,
                cache_read_image: 51,
                cache_read_audio: 10
            })
        );
    }

    #[test]
    fn absurd_counts_are_rejected() {
        let mut usage = Usage::new(MAX_TOKENS_PER_CALL, 0);
        assert_eq!(usage.validate(), Ok(()));
        usage.set(TokenKind::Output, u64::MAX);
        assert!(matches!(
            usage.validate(),
            Err(UsageError::Absurd {
                kind: TokenKind::Output,
                ..
            })
        ));
    }

    /// The limit and unit of each kind as the documentation gives them.
    fn documented_limit_and_unit(kind: TokenKind) -> (u64, &'static str) {
        match kind {
            TokenKind::WebSearchRequests => (MAX_WEB_SEARCHES_PER_CALL, "searches"),
            TokenKind::FileSearchCalls => (MAX_FILE_SEARCHES_PER_CALL, "calls"),
            TokenKind::ImageGenerationCalls => (MAX_HOSTED_TOOL_USES_PER_CALL, "images"),
            TokenKind::CodeInterpreterSessions => (MAX_HOSTED_TOOL_USES_PER_CALL, "sessions"),
            _ => (MAX_TOKENS_PER_CALL, "tokens"),
        }
    }

    #[test]
    fn every_kind_is_held_to_its_own_limit() {
        for kind in TokenKind::ALL {
            let (limit, unit) = documented_limit_and_unit(kind);
            assert_eq!((kind.max_per_call(), kind.unit()), (limit, unit), "{kind}");
            assert_eq!(kind.is_per_use(), unit != "tokens", "{kind}");
            // At the limit the count is not absurd (it may still contradict another count).
            let mut usage = Usage::new(MAX_TOKENS_PER_CALL, MAX_TOKENS_PER_CALL);
            usage.set(kind, limit);
            assert!(
                !matches!(usage.validate(), Err(UsageError::Absurd { .. })),
                "{kind}"
            );
            usage.set(kind, limit + 1);
            let error = usage.validate();
            // A part above the limit may also exceed its whole; the limit is checked first.
            assert_eq!(
                error,
                Err(UsageError::Absurd {
                    kind,
                    value: limit + 1
                }),
                "{kind}"
            );
        }
    }

    #[test]
    fn several_absurd_counts_at_once_are_rejected_at_the_first() {
        // Two of the uses, and a token kind with a use: each pair is still absurd.
        let pairs = [
            (
                TokenKind::FileSearchCalls,
                TokenKind::CodeInterpreterSessions,
            ),
            (TokenKind::Input, TokenKind::WebSearchRequests),
            (TokenKind::Output, TokenKind::ImageGenerationCalls),
        ];
        for (first, second) in pairs {
            let mut usage = Usage::new(100, 10);
            usage.set(first, documented_limit_and_unit(first).0 + 1);
            usage.set(second, documented_limit_and_unit(second).0 + 1);
            assert!(
                matches!(usage.validate(), Err(UsageError::Absurd { kind, .. }) if kind == first),
                "{first} and {second}: {:?}",
                usage.validate()
            );
        }
    }

    #[test]
    fn web_searches_are_limited_apart_from_tokens_and_are_not_tokens() {
        let mut usage = Usage::new(100, 10);
        usage.web_search_requests = MAX_WEB_SEARCHES_PER_CALL;
        assert_eq!(usage.validate(), Ok(()));
        assert_eq!(usage.total_tokens(), 110);
        usage.web_search_requests += 1;
        let error = usage.validate();
        assert_eq!(
            error,
            Err(UsageError::Absurd {
                kind: TokenKind::WebSearchRequests,
                value: 10_001
            })
        );
        assert_eq!(
            error.map_err(|e| e.to_string()),
            Err("absurd usage: web_search_requests = 10001 searches is above the limit of 10000 for one call".to_owned())
        );
    }
}
