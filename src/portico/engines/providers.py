"""Providers: one way of doing one kind of outside work, each declared once in its own folder.

A provider's folder (`engines/builtin/`, `engines/openai/`) declares a `Provider`: its kind, its
configuration model, which fields are secrets, its draft checks, its dashboard form fragment and
its factory. `Providers` (the registry, filled in `engines/__init__.py`) makes from the
declarations what used to be written once per engine: the configuration union the API checks and
its OpenAPI schema (`ConfigOf`), the public view (`ViewOf`), the secret handling
(`engines/secrets.py`), the Behavior form's choices and the engine that writes a reply.

Configuration models and views are read from the registry when a request is checked or the
OpenAPI schema is made, not when a module is imported, so a provider registered later (a test's
fake) is found everywhere without rebuilding a model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Optional, Union

from pydantic import BaseModel, Field, GetCoreSchemaHandler, GetJsonSchemaHandler, TypeAdapter, create_model
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from portico.engines.base import Engine, EngineError
from portico.schemas import Strict


class Kind(StrEnum):
    """What a provider does. Each kind has its own configuration union and its own form choice."""

    REPLY = "reply"
    SPEECH_TO_TEXT = "speech_to_text"
    TEXT_TO_SPEECH = "text_to_speech"
    EMBEDDINGS = "embeddings"


class ProviderConfig(Strict):
    """A provider's configuration as the API takes it; `type` names the provider (the union's tag).
    Secret fields are write-only: accepted here, stored encrypted, never returned."""

    type: str


def no_checks(config: dict[str, Any], draft: dict[str, Any]) -> list[str]:
    return []


@dataclass(frozen=True)
class Provider:
    kind: Kind
    name: str
    config: type[ProviderConfig]
    # Made once per process, on first use, given the registry (a provider may use another's engine).
    make: Callable[[Providers], Any]
    label: str
    summary: str
    secrets: tuple[str, ...] = ()
    # The configuration's URL field: a stored secret is only ever sent to the host (scheme, host,
    # port) it was saved with (engines/secrets.py).
    address: str | None = None
    # What stops a draft with this configuration from being published, in sentences an owner can act on.
    checks: Callable[[dict[str, Any], dict[str, Any]], list[str]] = no_checks
    # A Jinja template with the provider's own form fields ("engines/openai/form.html"), or None.
    form: str | None = None
    form_fields: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        # The fields the dashboard reads from a form: every configuration field but the tag and the secrets.
        fields = tuple(name for name in self.config.model_fields if name != "type" and name not in self.secrets)
        object.__setattr__(self, "form_fields", fields)

    def form_defaults(self) -> dict[str, Any]:
        defaults = {}
        for name in self.form_fields:
            value = self.config.model_fields[name].default
            # 30.0 reads "30" in a number box.
            defaults[name] = int(value) if isinstance(value, float) and value.is_integer() else value
        return defaults


class Providers:
    def __init__(self, providers: list[Provider]) -> None:
        self._providers: dict[tuple[Kind, str], Provider] = {}
        self._made: dict[tuple[Kind, str], Any] = {}
        self._adapters: dict[tuple[Any, ...], Any] = {}
        for provider in providers:
            self.add(provider)

    def add(self, provider: Provider) -> None:
        key = (provider.kind, provider.name)
        if key in self._providers:
            raise ValueError(f"a {provider.kind} provider called {provider.name!r} is already registered")
        self._providers[key] = provider

    def remove(self, provider: Provider) -> None:
        key = (provider.kind, provider.name)
        del self._providers[key]
        self._made.pop(key, None)

    @contextmanager
    def registered(self, provider: Provider) -> Iterator[Provider]:
        """A provider known only within the block (a test's fake)."""
        self.add(provider)
        try:
            yield provider
        finally:
            self.remove(provider)

    def of(self, kind: Kind) -> list[Provider]:
        return [provider for (k, _), provider in self._providers.items() if k == kind]

    def find(self, kind: Kind, name: str) -> Provider | None:
        return self._providers.get((kind, name))

    def get(self, kind: Kind, name: str) -> Provider:
        provider = self.find(kind, name)
        if provider is None:
            raise EngineError("engine_unknown", f"no {kind} provider called {name!r}", retryable=False)
        return provider

    def made(self, kind: Kind, name: str) -> Any:
        provider = self.get(kind, name)
        if (kind, name) not in self._made:
            self._made[(kind, name)] = provider.make(self)
        return self._made[(kind, name)]

    def engine(self, name: str) -> Engine:
        engine: Engine = self.made(Kind.REPLY, name)
        return engine

    async def aclose(self) -> None:
        """Release what the made instances hold (connection pools); the next use makes fresh ones,
        in whatever event loop is running then."""
        made, self._made = self._made, {}
        for instance in made.values():
            await instance.aclose()

    def config_adapter(self, kind: Kind) -> TypeAdapter[Any]:
        """The kind's configurations, one of them picked by `type`."""
        models = tuple(provider.config for provider in self.of(kind))
        key = ("config", kind, models)
        if key not in self._adapters:
            union = models[0] if len(models) == 1 else Union[models]  # noqa: UP007 - a union made at run time
            self._adapters[key] = TypeAdapter(Annotated[union, Field(discriminator="type")])  # type: ignore[arg-type]
        adapter: TypeAdapter[Any] = self._adapters[key]
        return adapter

    def view_model(self, kind: Kind) -> type[BaseModel]:
        """What the API shows of a kind's configuration: one flat object with every provider's
        public fields (null where the provider has none) and a `has_<secret>` for each secret."""
        providers = tuple(self.of(kind))
        key = ("view", kind, tuple(p.config for p in providers))
        if key not in self._adapters:
            fields: dict[str, Any] = {"type": (str, ...)}
            for provider in providers:
                for name, info in provider.config.model_fields.items():
                    if name == "type" or name in fields:
                        continue
                    if name in provider.secrets:
                        fields[f"has_{name}"] = (bool | None, None)
                    else:
                        fields[name] = (Optional[info.annotation], None)  # noqa: UP045 - a type made at run time
            self._adapters[key] = create_model(VIEW_TITLES[kind], **fields)
        model: type[BaseModel] = self._adapters[key]
        return model


# The view's name in the OpenAPI schema, kept from before providers (the engine's was EngineOut).
VIEW_TITLES = {
    Kind.REPLY: "EngineOut",
    Kind.SPEECH_TO_TEXT: "SpeechToTextOut",
    Kind.TEXT_TO_SPEECH: "TextToSpeechOut",
    Kind.EMBEDDINGS: "EmbeddingsOut",
}


@dataclass(frozen=True)
class ConfigOf:
    """`Annotated[ProviderConfig, ConfigOf(registry, kind)]`: a request field that takes one of the
    kind's registered configurations, checked and documented from the registry at that moment.
    A form checked with `strict=False` passes `context={"strict": False}` (the inner check cannot
    see the outer call's own strictness)."""

    registry: Providers
    kind: Kind

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        def check(value: Any, info: core_schema.ValidationInfo) -> Any:
            if isinstance(value, ProviderConfig):
                return value
            lax = isinstance(info.context, dict) and info.context.get("strict") is False
            # Its errors keep their place (engine.openai.base_url), as a union declared in place would.
            return self.registry.config_adapter(self.kind).validate_python(
                value, strict=False if lax else None, context=info.context
            )

        return core_schema.with_info_plain_validator_function(
            check, serialization=core_schema.plain_serializer_function_ser_schema(_dump)
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(self.registry.config_adapter(self.kind).core_schema)


@dataclass(frozen=True)
class ViewOf:
    """`Annotated[dict[str, Any], ViewOf(registry, kind)]`: a response field showing a
    configuration's public view (engines/secrets.py `public_view`), as the registry's view model."""

    registry: Providers
    kind: Kind

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        def check(value: Any) -> Any:
            model = self.registry.view_model(self.kind)
            return value if isinstance(value, model) else model.model_validate(value)

        return core_schema.no_info_plain_validator_function(
            check, serialization=core_schema.plain_serializer_function_ser_schema(_dump)
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        model = self.registry.view_model(self.kind).__pydantic_core_schema__
        # As a reference to a named schema (EngineOut), as a model field declared in place is.
        ref = core_schema.definition_reference_schema(model["ref"])
        schema = handler(core_schema.definitions_schema(ref, [model]))
        # The named schema's own title beside the reference, which pydantic then drops as
        # repeated, rather than a title made from the field's name.
        schema["title"] = VIEW_TITLES[self.kind]
        return schema


def _dump(value: Any) -> Any:
    return value.model_dump() if isinstance(value, BaseModel) else value
