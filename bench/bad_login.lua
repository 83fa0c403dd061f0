-- wrk: POST bad logins (unknown and known addresses, wrong password) as fast as possible.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
    n = n + 1
    local email
    if n % 2 == 0 then
        email = "admin@localhost"
    else
        email = "nobody" .. n .. "@example.org"
    end
    return wrk.format(nil, "/api/v1/auth/login", nil,
        '{"email":"' .. email .. '","password":"wrong password ' .. n .. '"}')
end
