-- wrk: a program lead creating patients (unique addresses), one POST per request.
-- Needs PROGRAM_ID and LEAD_TOKEN in the environment.
local program = os.getenv("PROGRAM_ID")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("LEAD_TOKEN")
local counter = 0
local threads = {}
setup = function(thread)
    thread:set("tid", #threads + 1)
    table.insert(threads, thread)
end
request = function()
    counter = counter + 1
    local email = "p" .. (tid or 0) .. "-" .. counter .. "-" .. math.random(1, 1000000000) .. "@example.org"
    return wrk.format(nil, "/api/v1/programs/" .. program .. "/patients", nil,
        '{"name":"Bench Patient","email":"' .. email .. '","email_consent":true}')
end
done = function(summary, latency, requests)
    io.write(string.format("lead writes: %d requests, %d non-2xx/socket errors, p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
        summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read
        + summary.errors.write + summary.errors.timeout,
        latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
