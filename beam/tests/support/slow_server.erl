%% A gen_server that handles a cast in 20 ms, fed 100 casts a second by
%% a feeder: its mailbox grows by about 50 messages a second. Under a
%% supervisor, as an application's processes are.
-module(slow_server).
-behaviour(gen_server).
-behaviour(supervisor).
-export([start/0, start_link/0, feeder/0]).
-export([init/1, handle_call/3, handle_cast/2]).

start() ->
    {ok, Sup} = supervisor:start_link({local, slow_sup}, ?MODULE, sup),
    unlink(Sup),
    {ok, Sup}.

start_link() ->
    gen_server:start_link({local, slow_server}, ?MODULE, server, []).

init(sup) ->
    Children = [#{id => slow_server, start => {?MODULE, start_link, []}},
                #{id => feeder, start => {proc_lib, start_link, [?MODULE, feeder, []]}}],
    {ok, {#{strategy => one_for_one, intensity => 5, period => 10}, Children}};
init(server) ->
    {ok, 0}.

handle_call(count, _From, N) -> {reply, N, N}.

handle_cast(work, N) ->
    timer:sleep(20),
    {noreply, N + 1}.

feeder() ->
    proc_lib:init_ack({ok, self()}),
    feed().

feed() ->
    gen_server:cast(slow_server, work),
    timer:sleep(10),
    feed().
