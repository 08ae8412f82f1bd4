from __future__ import annotations

from app.core.errors import Conflict, InvalidInput, NotFound


class CaseNotPublishable(Conflict):
    code = "case_not_publishable"
    message = "只有已办结且核查属实（或部分属实）的案件可以公开曝光"


class PhotoNotOfCase(InvalidInput):
    code = "photo_not_of_case"
    message = "所选照片不属于该案件"


class NotPublished(Conflict):
    code = "not_published"
    message = "该案件当前未公开，无需撤回"


class PublicationNotFound(NotFound):
    code = "publication_not_found"
    message = "该案件没有公开记录"


class PublicCaseNotFound(NotFound):
    code = "public_case_not_found"
    message = "未找到该曝光案例"
