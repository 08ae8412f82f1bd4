from __future__ import annotations

from app.core.errors import Conflict, InvalidInput, ServiceUnavailable, Unauthenticated


class WeChatCodeInvalid(Unauthenticated):
    code = "wechat_code_invalid"
    message = "微信登录凭证无效或已过期，请重新登录"


class WeChatUnavailable(ServiceUnavailable):
    code = "wechat_unavailable"
    message = "微信服务暂时不可用，请稍后重试"


class BadCredentials(Unauthenticated):
    code = "bad_credentials"
    message = "用户名或密码错误"


class StaffUsernameTaken(Conflict):
    code = "username_taken"
    message = "用户名已存在"


class DepartmentRequired(InvalidInput):
    code = "department_required"
    message = "核查员和部门负责人必须属于一个部门"


class WrongAudience(Unauthenticated):
    code = "wrong_token_kind"
    message = "此接口需要另一种登录身份"
