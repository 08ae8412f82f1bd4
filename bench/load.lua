-- wrk script for bench/load.py. Usage: wrk -s bench/load.lua <url> -- <config.lua>
--
-- config.lua returns a table (written by load.py):
--   mode       "get" | "submit" | "upload"
--   path       the request path
--   token      bearer token (mode "get")
--   items      per-thread file prefix (mode "submit": lines "<token> <upload id>"; mode "upload": lines "<token>")
--   pace_rps   0 for a closed loop; otherwise the total rate, shared evenly by the threads
--   threads    wrk -t, to split pace_rps
--   submit: body_prefix, body_suffix (the JSON around location and upload id), lon, lat, spread
--   upload: photo (path), photo_split (byte offset after the APPn segments), boundary
--
-- done() prints one line "WRK_JSON {...}" with the percentiles (µs), the status counts and wrk's error counts.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("bench_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1e6
end

-- main state: the threads, so that done() can read their counters
local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("thread_id", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

-- thread state (globals, so that thread:get() can read them)
statuses = {}
wrapped = 0
error_sample = nil

local cfg
local items = {}
local position = 0
local static_request
local photo_head, photo_tail
local interval_ms = 0
local next_slot = 0
local run_tag = tostring(math.floor(now_ms())) .. "-" .. tostring(math.random(1, 1e9))

local function next_item()
  position = position + 1
  if position > #items then
    position = 1
    wrapped = wrapped + 1
  end
  return items[position]
end

function init(args)
  cfg = dofile(args[1])
  math.randomseed(math.floor(now_ms()) + thread_id * 7919)
  if cfg.items then
    for line in io.lines(cfg.items .. thread_id .. ".txt") do
      items[#items + 1] = line
    end
  end
  if cfg.mode == "get" then
    static_request = wrk.format("GET", cfg.path, { ["Authorization"] = "Bearer " .. cfg.token })
  elseif cfg.mode == "upload" then
    local file = assert(io.open(cfg.photo, "rb"))
    local data = file:read("*a")
    file:close()
    local prefix = "--" .. cfg.boundary .. "\r\n"
      .. 'Content-Disposition: form-data; name="file"; filename="photo.jpg"\r\n'
      .. "Content-Type: image/jpeg\r\n\r\n"
    photo_head = prefix .. data:sub(1, cfg.photo_split)
    photo_tail = data:sub(cfg.photo_split + 1) .. "\r\n--" .. cfg.boundary .. "--\r\n"
  end
  if cfg.pace_rps > 0 then
    interval_ms = 1000 * cfg.threads / cfg.pace_rps
  end
end

-- Pacing: each thread hands out send slots interval_ms apart, whichever of its connections is free takes the next
-- one. A thread that falls behind does not build a backlog (the next slot is never in the past), so the achieved
-- rate shows whether the server kept up. Defined only when pacing (wrk decides from the main state, which runs no
-- init(), hence the environment variable): wrk then calls it before every request.
if os.getenv("BENCH_LOAD_PACED") == "1" then
  function delay()
    local now = now_ms()
    if next_slot < now then
      next_slot = now
    end
    local wait = next_slot - now
    next_slot = next_slot + interval_ms
    return math.floor(wait)
  end
end

local function submit_request()
  local token, upload = next_item():match("^(%S+) (%S+)$")
  local lon = cfg.lon + (math.random() * 2 - 1) * cfg.spread
  local lat = cfg.lat + (math.random() * 2 - 1) * cfg.spread
  local body = cfg.body_prefix
    .. string.format('"longitude":%.6f,"latitude":%.6f', lon, lat)
    .. cfg.body_middle
    .. '"' .. upload .. '"'
    .. cfg.body_suffix
  local headers = {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = "load-" .. upload .. "-" .. wrapped,
  }
  return wrk.format("POST", cfg.path, headers, body)
end

local function upload_request()
  local token = next_item()
  -- A JPEG comment segment (FF FE, big-endian length including itself) unique to this request, after the APPn
  -- segments: every request is a distinct photo with the same pixels and EXIF, so none is a cheap replay.
  local text = "bench-load " .. run_tag .. " " .. thread_id .. " " .. position .. " " .. wrapped
  local length = #text + 2
  local segment = string.char(0xFF, 0xFE, math.floor(length / 256), length % 256) .. text
  local headers = {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "multipart/form-data; boundary=" .. cfg.boundary,
  }
  return wrk.format("POST", cfg.path, headers, photo_head .. segment .. photo_tail)
end

function request()
  if static_request then
    return static_request
  elseif cfg.mode == "submit" then
    return submit_request()
  end
  return upload_request()
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status >= 300 and error_sample == nil then
    error_sample = tostring(status) .. " " .. string.sub(body or "", 1, 300)
  end
end

local function json_string(value)
  return '"' .. string.gsub(value, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end) .. '"'
end

local function json_object(map)
  local parts = {}
  for key, value in pairs(map) do
    local encoded = type(value) == "string" and json_string(value) or string.format("%.17g", value)
    parts[#parts + 1] = json_string(tostring(key)) .. ":" .. encoded
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
  local counts, samples, wrapped_total = {}, {}, 0
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses") or {}) do
      counts[tostring(status)] = (counts[tostring(status)] or 0) + count
    end
    wrapped_total = wrapped_total + (thread:get("wrapped") or 0)
    local sample = thread:get("error_sample")
    if sample then
      samples[#samples + 1] = json_string(sample)
    end
  end
  local percentiles = {}
  for _, p in ipairs({ 50, 90, 95, 99, 99.9 }) do
    percentiles[tostring(p)] = latency:percentile(p)
  end
  local errors = summary.errors
  io.write("WRK_JSON {",
    '"duration_us":', string.format("%d", summary.duration), ",",
    '"requests":', string.format("%d", summary.requests), ",",
    '"bytes":', string.format("%d", summary.bytes), ",",
    '"latency_us":{"percentiles":', json_object(percentiles), ",",
    '"mean":', string.format("%.1f", latency.mean), ",",
    '"max":', string.format("%d", latency.max), "},",
    '"statuses":', json_object(counts), ",",
    '"socket_errors":', json_object({
      connect = errors.connect, read = errors.read, write = errors.write, timeout = errors.timeout,
    }), ",",
    '"wrapped":', string.format("%d", wrapped_total), ",",
    '"error_samples":[', table.concat(samples, ","), "]}\n")
end
