%% tcp_echo — the Erlang/OTP peer server for ember_io_bench's TCP
%% request/response benchmark: gen_tcp, an acceptor that spawns a process per
%% connection, each in {active, once} mode echoing 64-byte requests (a request
%% may arrive split across packets or several merged into one).
%%
%%   erlc -o DIR tcp_echo.erl
%%   erl +S N:N -noshell -pa DIR -s tcp_echo main [PORT = 0]
%%
%% Listens on 127.0.0.1:PORT (0: any free port), prints "port=<n>" on stdout,
%% and serves until stdin is closed (or the VM gets SIGTERM).
-module(tcp_echo).
-export([main/0, main/1]).

-define(REQUEST_BYTES, 64).

main() -> main([]).

main(Args) ->
    Port = case Args of
               [P | _] when is_atom(P) -> list_to_integer(atom_to_list(P));
               [P | _] when is_list(P) -> list_to_integer(P);
               [] -> 0
           end,
    {ok, L} = gen_tcp:listen(Port, [binary, {packet, raw}, {active, false},
                                    {reuseaddr, true}, {backlog, 1024},
                                    {nodelay, true}, {ip, {127, 0, 0, 1}}]),
    {ok, Bound} = inet:port(L),
    spawn_link(fun() -> accept(L) end),
    io:format("port=~b~n", [Bound]),
    wait_stdin_eof(),
    halt(0).

%% The listening socket belongs to this process, so it stays here until the
%% runner closes our stdin.
wait_stdin_eof() ->
    case io:get_line('') of
        eof -> ok;
        {error, _} -> ok;
        _ -> wait_stdin_eof()
    end.

accept(L) ->
    case gen_tcp:accept(L) of
        {ok, S} ->
            Pid = spawn(fun() -> receive {go, S} -> conn(S, <<>>) end end),
            ok = gen_tcp:controlling_process(S, Pid),
            Pid ! {go, S},
            accept(L);
        {error, closed} ->
            ok;
        {error, _} ->
            accept(L)
    end.

conn(S, Buf) ->
    case inet:setopts(S, [{active, once}]) of
        ok -> receive_request(S, Buf);
        {error, _} -> gen_tcp:close(S)
    end.

receive_request(S, Buf) ->
    receive
        {tcp, S, Data} ->
            All = <<Buf/binary, Data/binary>>,
            Whole = byte_size(All) - byte_size(All) rem ?REQUEST_BYTES,
            <<Reqs:Whole/binary, Rest/binary>> = All,
            case Whole > 0 andalso gen_tcp:send(S, Reqs) of
                {error, _} -> gen_tcp:close(S);
                _ -> conn(S, Rest)
            end;
        {tcp_closed, S} ->
            ok;
        {tcp_error, S, _} ->
            gen_tcp:close(S)
    end.
