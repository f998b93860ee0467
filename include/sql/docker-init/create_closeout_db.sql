CREATE DATABASE closeout OWNER airflow;
