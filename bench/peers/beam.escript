#!/usr/bin/env escript
%%! +P 4000000 +sbwt none +sbwtdcpu none +sbwtdio none
%% The clustertop-bench scenarios on the BEAM, for side-by-side figures.
%%
%%   escript bench/peers/beam.escript all [--quick]
%%   escript bench/peers/beam.escript local-oneway|ring|call-rtt|spawn|idle-memory [--quick]
%%
%% Prints one JSON object per result, as `clustertop-bench --json` does,
%% with "runtime":"beam". Run each scenario in a fresh VM (`all` does).
-mode(compile).

main(["all" | Rest]) ->
    Self = escript:script_name(),
    lists:foreach(
      fun(S) ->
              io:put_chars(os:cmd("escript " ++ Self ++ " " ++ S ++ " " ++ string:join(Rest, " ")))
      end,
      ["local-oneway", "ring", "call-rtt", "spawn", "idle-memory"]);
main([Scenario | Rest]) ->
    Quick = lists:member("--quick", Rest),
    run(Scenario, Quick);
main(_) ->
    io:format("usage: beam.escript <scenario|all> [--quick]~n"),
    halt(2).

report(Scenario, Fields) ->
    Body = [io_lib:format(",\"~s\":~p", [K, V]) || {K, V} <- Fields],
    io:format("{\"scenario\":\"~s\",\"runtime\":\"beam\"~s}~n", [Scenario, Body]).

now_ns() -> erlang:monotonic_time(nanosecond).

%% 1 sender -> 1 receiver, N small messages.
run("local-oneway", Quick) ->
    N = case Quick of true -> 1000000; false -> 10000000 end,
    Parent = self(),
    Receiver = spawn(fun() -> receive_n(N, 0, Parent) end),
    T0 = now_ns(),
    spawn(fun() -> send_n(Receiver, 0, N) end),
    receive {done, _Sum} -> ok end,
    Secs = (now_ns() - T0) / 1.0e9,
    report("local-oneway", [{messages, N}, {msgs_per_s, round(N / Secs)}, {seconds, Secs}]);

%% A token around a ring of processes.
run("ring", Quick) ->
    Shapes = case Quick of true -> [{1000, 100}, {100000, 1}]; false -> [{1000, 1000}, {100000, 10}] end,
    lists:foreach(
      fun({Size, Laps}) ->
              Hops = Size * Laps,
              Parent = self(),
              First = make_ring(Size, Parent),
              T0 = now_ns(),
              First ! {token, Hops},
              receive ring_done -> ok end,
              Ns = (now_ns() - T0) / Hops,
              report("ring", [{processes, Size}, {laps, Laps}, {ns_per_hop, round(Ns * 10) / 10}])
      end, Shapes);

%% Sequential gen_server-style calls (the BEAM's call path: monitor, send,
%% selective receive, demonitor).
run("call-rtt", Quick) ->
    N = case Quick of true -> 20000; false -> 200000 end,
    Server = spawn(fun server_loop/0),
    [call(Server, I) || I <- lists:seq(1, N div 10)],
    Samples = [begin T = now_ns(), call(Server, I), now_ns() - T end || I <- lists:seq(1, N)],
    Sorted = list_to_tuple(lists:sort(Samples)),
    Q = fun(P) -> element(max(1, round(P * N)), Sorted) / 1000 end,
    report("call-rtt", [{calls, N}, {p50_us, Q(0.5)}, {p99_us, Q(0.99)}, {p999_us, Q(0.999)}]);

%% Spawn and exit of many processes, from one process.
run("spawn", Quick) ->
    N = case Quick of true -> 100000; false -> 1000000 end,
    Parent = self(),
    T0 = now_ns(),
    spawn(fun() -> spawn_n(N, Parent) end),
    wait_exits(N),
    Secs = (now_ns() - T0) / 1.0e9,
    report("spawn", [{processes, N}, {spawns_per_s, round(N / Secs)}, {seconds, Secs}]);

%% Memory per idle process waiting in receive.
run("idle-memory", Quick) ->
    N = case Quick of true -> 100000; false -> 1000000 end,
    erlang:garbage_collect(),
    Before = erlang:memory(total),
    Pids = [spawn(fun() -> receive stop -> ok end end) || _ <- lists:seq(1, N)],
    After = erlang:memory(total),
    ListBytes = N * 2 * erlang:system_info(wordsize),
    report("idle-memory", [{processes, N}, {bytes_per_process, round((After - Before - ListBytes) / N)}]),
    [P ! stop || P <- Pids],
    ok;
run(Other, _) ->
    io:format("unknown scenario ~s~n", [Other]),
    halt(2).

receive_n(0, Sum, Parent) -> Parent ! {done, Sum};
receive_n(N, Sum, Parent) -> receive V -> receive_n(N - 1, Sum + V, Parent) end.

send_n(_, N, N) -> ok;
send_n(To, I, N) -> To ! I, send_n(To, I + 1, N).

make_ring(Size, Parent) ->
    Pids = [spawn(fun() -> ring_node(undefined, Parent) end) || _ <- lists:seq(1, Size)],
    Next = tl(Pids) ++ [hd(Pids)],
    [P ! {next, Nx} || {P, Nx} <- lists:zip(Pids, Next)],
    hd(Pids).

ring_node(Next, Parent) ->
    receive
        {next, N} -> ring_node(N, Parent);
        {token, 0} -> Parent ! ring_done;
        {token, H} -> Next ! {token, H - 1}, ring_node(Next, Parent)
    end.

server_loop() ->
    receive {call, From, Ref, V} -> From ! {Ref, V}, server_loop() end.

call(Server, V) ->
    Ref = erlang:monitor(process, Server),
    Server ! {call, self(), Ref, V},
    receive
        {Ref, R} -> erlang:demonitor(Ref, [flush]), R;
        {'DOWN', Ref, _, _, Reason} -> exit(Reason)
    end.

spawn_n(0, _) -> ok;
spawn_n(N, Parent) -> spawn(fun() -> Parent ! exited end), spawn_n(N - 1, Parent).

wait_exits(0) -> ok;
wait_exits(N) -> receive exited -> wait_exits(N - 1) end.
