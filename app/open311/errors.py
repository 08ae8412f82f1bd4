"""Open311 refusals. On the /open311 routes every error is answered in the spec's format (a list of
``{code, description}``) with the spec's statuses: 404 for an unknown resource, 403 for a missing or invalid
``api_key``, 400 for anything else; ``code`` is our stable machine code."""

from __future__ import annotations

from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound


class InvalidApiKey(Forbidden):
    code = "invalid_api_key"
    message = "api_key 缺失、无效或已停用"


class UnknownResource(NotFound):
    code = "unknown_resource"
    message = "没有这个 Open311 资源（格式须为 .json 或 .xml）"


class ServiceNotFound(NotFound):
    code = "service_not_found"
    message = "没有这个服务（行业领域）代码"


class RequestNotFound(NotFound):
    code = "request_not_found"
    message = "没有这个公开的服务请求"


class UnknownServiceCode(InvalidInput):
    code = "unknown_service_code"
    message = "没有这个服务（行业领域）代码"


class InvalidParameter(InvalidInput):
    code = "invalid_parameter"
    message = "参数不合法"


class ControlCharacters(InvalidParameter):
    code = "control_characters"
    message = "不能包含控制字符"


class DateRangeReversed(InvalidParameter):
    code = "date_range_reversed"
    message = "end_date 不能早于 start_date"


class DateRangeTooLong(InvalidInput):
    code = "date_range_too_long"
    message = "start_date 与 end_date 相隔不能超过 90 天"


class LocationRequired(InvalidInput):
    code = "location_required"
    message = "须提供 WGS-84 坐标 lat 与 long（暂不支持仅凭地址或地址编号定位）"


class MediaUrlNotSupported(InvalidInput):
    code = "media_url_not_supported"
    message = "不接受 media_url：照片须经审核上传，请通过小程序或 12350 热线提交照片"


class FormRequired(InvalidInput):
    code = "form_required"
    message = "请求体须为 application/x-www-form-urlencoded（UTF-8）"


class PartnerNotFound(NotFound):
    code = "partner_not_found"
    message = "没有这个合作方"


class PartnerAlreadyRevoked(Conflict):
    code = "partner_already_revoked"
    message = "该合作方的密钥已停用"
