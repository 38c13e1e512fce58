"""Conventions every spider follows, enforced over all of them (Kingfisher Collect style)."""

from __future__ import annotations

import asyncio
import inspect
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic import BaseModel
from scrapy.settings import default_settings

import crawler.spiders
from crawler.base import SentinellaSpider, SpiderContext, crawl_settings
from crawler.config import SOURCE_NAMES, CrawlConfig, SourcesConfig
from crawler.spiders import class_name, spider_class, spider_names
from tests.crawler.expected_cases import NOW

SECTIONS = ("Domain", "Access", "Caveats", "Settings")
REPLAY = "http://replay.invalid:8080"


def test_there_is_a_spider_for_sedia_and_feeds() -> None:
    assert {"sedia", "feeds"} <= set(spider_names())


@pytest.mark.parametrize("name", spider_names())
def test_file_name_is_class_name_is_spider_name_is_source_name(name: str) -> None:
    cls = spider_class(name)
    assert cls.__name__ == class_name(name)
    assert cls.name == name
    assert Path(inspect.getfile(cls)).stem == name
    assert name in SOURCE_NAMES, "a spider's name is its source's name and config section"
    assert issubclass(cls, SentinellaSpider)


@pytest.mark.parametrize("name", spider_names())
def test_docstring_has_the_required_sections(name: str) -> None:
    doc = inspect.getdoc(spider_class(name)) or ""
    lines = [line.rstrip() for line in doc.splitlines()]
    positions = []
    for section in SECTIONS:
        assert section in lines, f"docstring section {section!r} missing"
        index = lines.index(section)
        body = lines[index + 1] if index + 1 < len(lines) else ""
        assert body.strip(), f"docstring section {section!r} is empty"
        positions.append(index)
    assert positions == sorted(positions), f"sections in the order {SECTIONS}"


@pytest.mark.parametrize("name", spider_names())
def test_no_url_literal_in_the_spider_module(name: str) -> None:
    source = Path(inspect.getfile(spider_class(name))).read_text("utf-8")
    code = re.sub(r'"""[\s\S]*?"""', "", source)  # docstrings may name the real endpoints
    assert not re.search(r"https?://", code), "build URLs from the source's config, never from literals"


def _pointed_at(model: BaseModel, base: str) -> BaseModel:
    """The same config with every http(s) URL moved to ``base`` (path and query kept)."""

    def move(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            parts = urlsplit(value)
            return base + parts.path + (f"?{parts.query}" if parts.query else "")
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        if isinstance(value, list):
            return [move(v) for v in value]
        return value

    return type(model).model_validate(move(model.model_dump()))


@pytest.mark.parametrize("name", spider_names())
def test_every_first_request_goes_to_the_configured_base_url(name: str) -> None:
    section = _pointed_at(SourcesConfig().get(name), REPLAY)
    spider = spider_class(name)(context=SpiderContext(source_config=section, crawl=CrawlConfig(), now=NOW))  # type: ignore[arg-type]

    async def first() -> list[Any]:
        return [request async for request in spider.start()]

    requests = asyncio.run(first())
    assert requests, "a spider starts with at least one request"
    for request in requests:
        assert request.url.startswith(REPLAY + "/"), request.url
        assert request.meta.get("kind") in ("listing", "detail", "feed")
        assert request.errback is not None, "requests are built with SentinellaSpider.request()"


def test_every_spider_module_is_listed() -> None:
    files = {p.stem for p in Path(crawler.spiders.__file__).parent.glob("*.py") if not p.stem.startswith("_")}
    assert set(spider_names()) == files


def test_every_non_default_crawl_setting_has_a_comment_saying_why() -> None:
    settings = crawl_settings(CrawlConfig())
    lines = inspect.getsource(crawl_settings).splitlines()
    custom = {"SENTINELLA_RETRY_BACKOFF", "SENTINELLA_RETRY_BACKOFF_MAX"}
    for key, value in settings.items():
        default = getattr(default_settings, key, None)
        if key not in custom and value == default:
            continue
        index = next(i for i, line in enumerate(lines) if line.strip().startswith(f'"{key}"'))
        # The comment sits on the line(s) above, possibly above a small group of related keys.
        above = lines[max(0, index - 3) : index]
        assert any(line.strip().startswith("#") for line in above) or "#" in lines[index], key


def test_politeness_settings() -> None:
    settings = crawl_settings(CrawlConfig(contact_url="https://cluster.example/sentinella"))
    assert settings["ROBOTSTXT_OBEY"] is True
    assert (
        settings["USER_AGENT"].startswith("Sentinella/")
        and "https://cluster.example/sentinella" in settings["USER_AGENT"]
    )
    assert settings["AUTOTHROTTLE_ENABLED"] is True
    assert settings["CONCURRENT_REQUESTS_PER_DOMAIN"] <= 2
    assert settings["DOWNLOAD_MAXSIZE"] == 10 * 1024 * 1024
    assert {500, 502, 503, 504, 408, 429} <= set(settings["RETRY_HTTP_CODES"])
    with pytest.raises(ValueError):
        CrawlConfig(concurrency=3)


def test_nothing_in_a_crawl_listens_for_commands() -> None:
    # Neither the telnet console nor Scrapy's remote control (an HTTP server that runs code it is
    # sent, on by default since Scrapy 2.19): a crawl is an unattended child process.
    settings = crawl_settings(CrawlConfig())
    assert settings["TELNETCONSOLE_ENABLED"] is False
    assert settings["REMOTE_CONTROL_ENABLED"] is False
    assert not any(path.endswith("RemoteControl") for path in settings["EXTENSIONS_BASE"])
    # Nor are cookies kept (nor their middleware loaded); the other defaults stay.
    assert settings["COOKIES_ENABLED"] is False
    base = settings["DOWNLOADER_MIDDLEWARES_BASE"]
    assert not any(path.endswith("CookiesMiddleware") for path in base)
    assert len(base) == len(default_settings.DOWNLOADER_MIDDLEWARES_BASE) - 1
