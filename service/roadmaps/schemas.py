from service.schemas import ReadModel, Timestamp


class RoadmapRead(ReadModel):
    code: str
    title: str
    title_ru: str | None
    period: str | None
    official_program_count: int | None
    note: str | None
    sources: list[str]
    created_at: Timestamp
    program_count: int
    by_status: dict[str, int]


class RoadmapList(ReadModel):
    items: list[RoadmapRead]
