"""Errors of the intake domain (photo uploads and reports).

Stable codes: the mini-program switches on them to show the right hint, so never rename one.
"""

from __future__ import annotations

from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound, PayloadTooLarge


class NotAnImage(InvalidInput):
    status = 422
    code = "not_an_image"
    message = "文件不是可识别的图片"


class UnsupportedImageType(InvalidInput):
    status = 422
    code = "unsupported_image_type"
    message = "不支持该图片格式，请上传 JPEG、PNG、WebP 或 HEIC 图片"


class ImageTooLarge(PayloadTooLarge):
    status = 413
    code = "image_too_large"
    message = "图片像素过大"


class ImageCorrupt(InvalidInput):
    status = 422
    code = "image_corrupt"
    message = "图片已损坏，无法读取"


class ImageTooComplex(InvalidInput):
    status = 422
    code = "image_too_complex"
    message = "图片编码过于复杂（渐进式扫描次数过多），无法处理，请上传相机或手机直接拍摄的照片"


class UploadNotFound(NotFound):
    code = "upload_not_found"
    message = "照片不存在或已过期，请重新上传"


class UploadAlreadyAttached(Conflict):
    code = "upload_already_attached"
    message = "照片已用于另一条举报"


class ReportNotFound(NotFound):
    code = "report_not_found"
    message = "未找到该举报"


class ChannelNotAllowed(Forbidden):
    code = "channel_not_allowed"
    message = "当前身份不能使用该举报渠道"
