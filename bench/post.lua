-- POST a valid send request to the sandbox gateway; the token comes from the first script argument.
-- Non-2xx replies are counted by wrk itself ("Non-2xx or 3xx responses").
wrk.method = "POST"
wrk.body = '{"id": 1, "phone": "79001234567", "text": "wrk"}'
wrk.headers["Content-Type"] = "application/json"

function init(args)
  wrk.headers["Authorization"] = "Bearer " .. (args[1] or "sandbox-token")
end
