"""Replay routes of Regione Lombardia and incentivi.gov.it, for tests: a re-export of
:mod:`crawler.replay.regional` (one implementation, shipped with the package)."""

from crawler.replay.regional import (
    DATASET_PATH,
    DETAIL_PREFIX,
    INCENTIVI,
    LOMBARDIA,
    RECORDINGS,
    SEARCH_PATH,
    SOLR_PATH,
    BandiPortal,
    SocrataDataset,
    incentivi_body,
    install_incentivi,
    install_lombardia,
    lombardia_portal,
    lombardia_rows,
)

__all__ = [
    "DATASET_PATH",
    "DETAIL_PREFIX",
    "INCENTIVI",
    "LOMBARDIA",
    "RECORDINGS",
    "SEARCH_PATH",
    "SOLR_PATH",
    "BandiPortal",
    "SocrataDataset",
    "incentivi_body",
    "install_incentivi",
    "install_lombardia",
    "lombardia_portal",
    "lombardia_rows",
]
