"""What operators and a path-prefixing Ingress reach: ``/metrics`` and the dashboard page.

Every service answers ``/metrics`` itself (no redirect to ``/metrics/``, which a scraper behind a
path prefix would follow out of the prefix), and the dashboard names its assets and API relative
to its own address, so it works at ``https://host/reporting/dashboard`` as at ``/dashboard``.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin

import pytest

from tests.kit.test_http_limits import SERVICES, build, client


@pytest.mark.parametrize("service", SERVICES)
async def test_metrics_are_served_at_metrics_without_a_redirect(
    service: str, tmp_path: Path
) -> None:
    async with client(build(service, tmp_path)) as http:
        plain = await http.get("/metrics", follow_redirects=False)
        openmetrics = await http.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
    assert plain.status_code == 200, plain.headers
    assert plain.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE rhythm_events_consumed_total counter" in plain.text
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")


async def test_the_dashboard_loads_its_assets_relative_to_its_own_address(
    tmp_path: Path,
) -> None:
    async with client(build("reporting", tmp_path)) as http:
        page = (await http.get("/dashboard")).text
        script = (await http.get("/dashboard/app.js")).text
        references = re.findall(r'(?:href|src)="([^"#]+)"', page)
        assert sorted(references) == ["dashboard/app.css", "dashboard/app.js"]
        # Behind a prefix the browser resolves them under it; here they are the served assets.
        prefixed = "https://rhythm.example.com/reporting/dashboard"
        assert [urljoin(prefixed, ref) for ref in sorted(references)] == [
            "https://rhythm.example.com/reporting/dashboard/app.css",
            "https://rhythm.example.com/reporting/dashboard/app.js",
        ]
        for ref in references:
            assert (await http.get(urljoin("http://test/dashboard", ref))).status_code == 200
    api = re.search(r'const API = "([^"]+)"', script)
    assert api is not None
    assert api.group(1) == "v1/dashboards"
    assert urljoin(prefixed, api.group(1)) == "https://rhythm.example.com/reporting/v1/dashboards"
    assert not re.search(r"""fetch\(\s*["'`]/""", script), "the API is called by absolute path"
