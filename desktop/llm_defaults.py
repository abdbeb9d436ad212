"""The defaults of every LLM call Bondscope makes, in one place.

The connection to a chat server is shared by the `openai-compatible` backend, the `llm`
pre-labeler, `bondscope synthesize` and the app's Synthesize dialog; a MOLE-SYN run's settings by
`services.synthesis.SynthesisSettings`, the CLI's options and the dialog. Plugins may import this
module (it imports nothing), and the CLI shows these values in `--help` without loading services.
"""

# -- the chat server --------------------------------------------------------------------------
BACKEND = "openai-compatible"  # the LLM backend plugin
BASE_URL = "http://127.0.0.1:8000/v1"  # a local vLLM server: the app's first suggestion
API_KEY_ENV = "OPENAI_API_KEY"  # the variable that holds the key; the key is never stored
TIMEOUT_S = 120.0  # the whole of one request attempt
MAX_RETRIES = 5
BACKOFF_S = 1.0  # the first wait before a retry; it doubles, up to MAX_BACKOFF_S
MAX_BACKOFF_S = 60.0
CONCURRENCY = 4  # requests at once

# -- a MOLE-SYN run (paper.md §4) ----------------------------------------------------------------
START = "E"  # the walk's first behavior, or "pi" for a draw from the stationary distribution
SEED = 0
MAX_STEPS = 200  # steps of a trace
MAX_TOKENS = 16384  # estimated tokens of a whole trace
STEP_TOKENS = 1024  # max_tokens of each request
TEMPERATURE = 0.7
TOP_P = 0.95
