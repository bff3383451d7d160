"""Code mode for agent frameworks: one tool that runs TypeScript through a `Toolbox`.

Each module needs its framework, installed with the matching extra:

- `isobind.adapters.pydantic_ai`: a pydantic-ai toolset (`pip install 'isobind[pydantic-ai]'`)
- `isobind.adapters.openai_agents`: an OpenAI Agents SDK function tool
  (`pip install 'isobind[openai-agents]'`)
- `isobind.adapters.langchain`: a LangChain tool (`pip install 'isobind[langchain]'`)

Every adapter takes an open `Toolbox`. The tool's description carries the
rules for the code and the TypeScript API of the callable tools, and the tool
returns the run's result, console output, or error with its source line and a
hint, as text for the model.
"""
