@echo off
rem Renovate Faces model server at logon. Written by hifacegan-install; `hifacegan-install --uninstall` removes it.
start "" /B $command_line
