-- wrk script of `scripts/loadtest --soak`: counts the answers by HTTP status and prints one
-- line `status CODE COUNT` per status after wrk's own report.
counts = {}
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function response(status, headers, body)
    counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
    local total = {}
    for _, thread in ipairs(threads) do
        for status, n in pairs(thread:get("counts")) do
            total[status] = (total[status] or 0) + n
        end
    end
    for status, n in pairs(total) do
        io.write(string.format("status %d %d\n", status, n))
    end
end
