"""The board's words in English and Russian, and how a page picks its language. Pure.

Every label a page shows comes from here, so a test can check that both languages have all
of them, and a translation is fixed in one place."""

from collections.abc import Mapping
from enum import StrEnum

from service.rules.milestones import MilestoneState
from service.rules.workflow import Status


class Language(StrEnum):
    EN = "en"
    RU = "ru"


DEFAULT_LANGUAGE = Language.EN

# Russian is the working language of the Union State; the status names follow the acts that
# make each step (the presidents coordinate, the Council of Ministers and the Supreme State
# Council approve).
STATUS_LABELS: Mapping[Language, Mapping[Status, str]] = {
    Language.EN: {
        Status.DRAFT: "Draft",
        Status.COORDINATED: "Coordinated by the presidents",
        Status.MINISTERIALLY_APPROVED: "Approved by the Council of Ministers",
        Status.SUPREME_COUNCIL_APPROVED: "Approved by the Supreme State Council",
        Status.IN_IMPLEMENTATION: "In implementation",
        Status.DELAYED: "Delayed",
        Status.COMPLETED: "Completed",
        Status.CARRIED_OVER: "Carried over",
        Status.WITHDRAWN: "Withdrawn",
    },
    Language.RU: {
        Status.DRAFT: "Проект",
        Status.COORDINATED: "Согласована президентами",
        Status.MINISTERIALLY_APPROVED: "Утверждена Советом Министров",
        Status.SUPREME_COUNCIL_APPROVED: "Утверждена Высшим Государственным Советом",
        Status.IN_IMPLEMENTATION: "Реализуется",
        Status.DELAYED: "Отстаёт от графика",
        Status.COMPLETED: "Завершена",
        Status.CARRIED_OVER: "Перенесена",
        Status.WITHDRAWN: "Отозвана",
    },
}

# The sectors the seeded programmes name. A sector not listed here shows as recorded.
SECTOR_LABELS_RU: Mapping[str, str] = {
    "agriculture": "сельское хозяйство",
    "communications": "связь",
    "competition": "конкуренция",
    "consumer protection": "защита прав потребителей",
    "customs": "таможенное дело",
    "energy": "энергетика",
    "finance": "финансы",
    "industry": "промышленность",
    "macroeconomics": "макроэкономика",
    "public procurement": "государственные закупки",
    "social": "социальная сфера",
    "tax": "налоги",
    "trade": "торговля",
    "trade control": "контроль в сфере торговли",
    "transport": "транспорт",
}

TEXT: Mapping[str, Mapping[Language, str]] = {
    "board_title": {
        Language.EN: "Union programmes: status board",
        Language.RU: "Союзные программы: ход реализации",
    },
    "skip_to_content": {Language.EN: "Skip to content", Language.RU: "К содержанию"},
    "language": {Language.EN: "Language", Language.RU: "Язык"},
    "filters": {Language.EN: "Filters", Language.RU: "Фильтры"},
    "roadmap": {Language.EN: "Roadmap", Language.RU: "Основные направления"},
    "status": {Language.EN: "Status", Language.RU: "Статус"},
    "sector": {Language.EN: "Sector", Language.RU: "Отрасль"},
    "as_of": {Language.EN: "As of", Language.RU: "По состоянию на"},
    "any": {Language.EN: "All", Language.RU: "Все"},
    "show": {Language.EN: "Show", Language.RU: "Показать"},
    "reset": {Language.EN: "Reset", Language.RU: "Сбросить"},
    "today": {Language.EN: "today", Language.RU: "сегодня"},
    "showing_as_of": {
        Language.EN: "As the record stood at the end of",
        Language.RU: "По состоянию на конец дня",
    },
    "counts": {Language.EN: "Programmes by status", Language.RU: "Программы по статусам"},
    "total": {Language.EN: "Total", Language.RU: "Всего"},
    "no_programmes": {
        Language.EN: "No programme matches these filters.",
        Language.RU: "Нет программ, отвечающих этим условиям.",
    },
    "since": {Language.EN: "since", Language.RU: "с"},
    "no_sector": {Language.EN: "sector not recorded", Language.RU: "отрасль не указана"},
    "milestones": {Language.EN: "Milestones", Language.RU: "Контрольные точки"},
    "milestones_done": {Language.EN: "done", Language.RU: "выполнено"},
    "milestones_overdue": {Language.EN: "overdue", Language.RU: "просрочено"},
    "milestones_missed": {Language.EN: "missed", Language.RU: "не выполнено"},
    "no_milestones": {
        Language.EN: "No milestones recorded.",
        Language.RU: "Контрольные точки не внесены.",
    },
    "chart": {
        Language.EN: "Programmes by status at the end of each quarter",
        Language.RU: "Программы по статусам на конец каждого квартала",
    },
    "chart_scope": {
        Language.EN: "All programmes of the roadmap shown, whatever the status and sector "
        "filters; the last point is",
        Language.RU: "Все программы выбранных основных направлений, без учёта фильтров по "
        "статусу и отрасли; последняя точка —",
    },
    "chart_data": {Language.EN: "The chart's figures", Language.RU: "Данные диаграммы"},
    "quarter_end": {Language.EN: "Quarter end", Language.RU: "Конец квартала"},
    "live_on": {
        Language.EN: "Live: the page refreshes when a change is recorded.",
        Language.RU: "Обновляется автоматически при каждом изменении.",
    },
    "live_off": {
        Language.EN: "Not live: reload the page to see new changes.",
        Language.RU: "Автообновление недоступно: обновите страницу.",
    },
    "live_as_of": {
        Language.EN: "A past date is shown: the page does not refresh itself.",
        Language.RU: "Показано прошлое состояние: страница не обновляется.",
    },
    "english_title": {
        Language.EN: "English title",
        Language.RU: "Название на английском: русское название не найдено",
    },
    "back_to_board": {Language.EN: "Back to the board", Language.RU: "К списку программ"},
    "history": {Language.EN: "History", Language.RU: "История"},
    "effective": {Language.EN: "Effective", Language.RU: "Дата"},
    "recorded_by": {Language.EN: "recorded by", Language.RU: "внёс"},
    "on_behalf_of": {Language.EN: "on behalf of", Language.RU: "от имени"},
    "decision": {Language.EN: "Decision", Language.RU: "Решение"},
    "source": {Language.EN: "Source", Language.RU: "Источник"},
    "sources": {Language.EN: "Sources", Language.RU: "Источники"},
    "no_sources": {Language.EN: "No sources recorded.", Language.RU: "Источники не указаны."},
    "event_created": {Language.EN: "Recorded as", Language.RU: "Внесена со статусом"},
    "event_updated": {Language.EN: "Details changed", Language.RU: "Изменены сведения"},
    "event_corrected": {
        Language.EN: "Correction: status restored to",
        Language.RU: "Исправление: восстановлен статус",
    },
    "event_milestone": {Language.EN: "Milestone", Language.RU: "Контрольная точка"},
    "due": {Language.EN: "Due", Language.RU: "Срок"},
    "done": {Language.EN: "Done", Language.RU: "Выполнена"},
    "set_on": {Language.EN: "Set on", Language.RU: "Установлена"},
    "state": {Language.EN: "State", Language.RU: "Состояние"},
    "title": {Language.EN: "Title", Language.RU: "Название"},
    "lead_bodies": {Language.EN: "Lead bodies", Language.RU: "Ответственные органы"},
    "summary": {Language.EN: "Summary", Language.RU: "Описание"},
    "api": {Language.EN: "API", Language.RU: "API"},
    "api_reference": {Language.EN: "API reference", Language.RU: "Справочник API"},
    "data_as_json": {Language.EN: "This page as data", Language.RU: "Эти данные в JSON"},
    "closed_title": {Language.EN: "The board is not public", Language.RU: "Доступ закрыт"},
    "closed_body": {
        Language.EN: "This service shows its record only to callers with an API key. "
        "Ask its operator for one, and read the record through the API.",
        Language.RU: "Сведения этого сервиса доступны только по ключу API. "
        "Получите ключ у администратора и читайте данные через API.",
    },
    "error_title": {Language.EN: "This page cannot be shown", Language.RU: "Страница недоступна"},
}

MILESTONE_STATE_LABELS: Mapping[Language, Mapping[MilestoneState, str]] = {
    Language.EN: {
        MilestoneState.PLANNED: "planned",
        MilestoneState.OVERDUE: "overdue",
        MilestoneState.DONE: "done",
        MilestoneState.MISSED: "missed",
    },
    Language.RU: {
        MilestoneState.PLANNED: "запланирована",
        MilestoneState.OVERDUE: "просрочена",
        MilestoneState.DONE: "выполнена",
        MilestoneState.MISSED: "не выполнена",
    },
}

# "1 programme", "2 programmes"; Russian has three forms: 1 программа, 2 программы, 5 программ.
_PROGRAMMES: Mapping[Language, tuple[str, ...]] = {
    Language.EN: ("programme", "programmes"),
    Language.RU: ("программа", "программы", "программ"),
}


def programmes(count: int, language: Language) -> str:
    """`count` with the noun in the form the number takes."""
    forms = _PROGRAMMES[language]
    if language is Language.EN:
        return f"{count} {forms[0] if count == 1 else forms[1]}"
    last_two, last = count % 100, count % 10
    if last == 1 and last_two != 11:
        form = forms[0]
    elif 2 <= last <= 4 and not 12 <= last_two <= 14:
        form = forms[1]
    else:
        form = forms[2]
    return f"{count} {form}"


def choose_language(asked: str | None, accept_language: str | None) -> Language:
    """`?lang=` if it names a language we have, else the first of Accept-Language's that we
    have, by quality, else English."""
    if asked is not None and asked in Language.__members__.values():
        return Language(asked)
    ranked: list[tuple[float, int, Language]] = []
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in Language.__members__.values():
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, position, Language(primary)))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE


def sector_label(sector: str | None, language: Language) -> str | None:
    if sector is None or language is Language.EN:
        return sector
    return SECTOR_LABELS_RU.get(sector, sector)
