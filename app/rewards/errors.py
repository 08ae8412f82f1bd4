from __future__ import annotations

from app.core.errors import Conflict, InvalidInput


class EarlierStagePending(Conflict):
    code = "earlier_stage_pending"
    message = "核实阶段的奖励尚未审结，处罚阶段的奖励须在其后审核"


class PolicyVersionExists(Conflict):
    code = "reward_policy_version_exists"
    message = "该奖励政策的此版本已存在；修改政策请提交新版本"


class NoRewardToClaim(Conflict):
    code = "no_reward_to_claim"
    message = "该举报没有待领取的奖励"


class InvalidResidentId(InvalidInput):
    code = "invalid_resident_id"
    message = "居民身份证号码不正确（校验位不符）"


class NoPayeeOnFile(Conflict):
    code = "no_payee_on_file"
    message = "该奖励尚未登记领奖人信息"
